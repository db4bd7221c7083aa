"""Held-out win rate: each model's greedy responses judged against the SFT model's, per prompt.

win rate = mean over prompts of P(y_model ≻ y_sft) under the configured judge (ties count ½),
with a percentile-bootstrap CI over prompts. The raw judgments are written next to the score.
"""

from __future__ import annotations

from ..io import write_json, write_jsonl
from .scoring import cached_judge, load_answers
from .stats import bootstrap_mean_ci, truncation_rate


def judge_against_baseline(*, prompts_path, candidate_path, baseline_path, judge_cfg, out_json, out_judgments,
                           cache_path=None, ci_level=0.95, seed=0, model_id="", baseline_id="sft") -> dict:
    prompts, cand, base, ids = load_answers(prompts_path, candidate_path, baseline_path)
    ids = sorted(ids)
    judge = cached_judge(judge_cfg, cache_path)
    rows = [{"prompt_id": i, "p_candidate_wins": judge(prompts[i], cand[i]["text"], base[i]["text"]),
             "candidate_tokens": cand[i].get("n_tokens"), "baseline_tokens": base[i].get("n_tokens")} for i in ids]
    mean, lo, hi = bootstrap_mean_ci([r["p_candidate_wins"] for r in rows], ci_level, seed=seed)
    lengths = [cand[i].get("n_tokens") or 0 for i in ids]
    result = {"benchmark": "heldout_winrate", "model_id": model_id, "win_rate": mean, "ci_low": lo, "ci_high": hi,
              "ci_level": ci_level, "ci_method": "percentile bootstrap over prompts (2000 resamples)",
              "n_prompts": len(ids), "judge": judge.identity, "judge_calls": judge.calls, "baseline": baseline_id,
              "data": str(prompts_path), "mean_response_tokens": sum(lengths) / len(lengths),
              "truncation_rate": truncation_rate([cand[i] for i in ids]), "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result
