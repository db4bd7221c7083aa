"""Held-out win rate: each model's greedy responses judged against the SFT model's, per prompt.

win rate = mean over prompts of P(y_model ≻ y_sft) under the configured judge (ties count ½),
with a percentile-bootstrap CI over prompts. The raw judgments are written next to the score.

With a `panel` judge of two or more criteria, P is the mean of the criteria's votes (1, ½ or 0 each), so the win
rate splits exactly into one win rate per criterion: each judgment row carries its `votes` and the score its
`by_criterion` (mean and CI over prompts), which says which of the judge's preferences a model moved. A pair with
an empty answer is decided whole by the judge's `on_empty` policy, so every criterion gets that pair's P.
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
    by_criterion = _criterion_votes(judge_cfg, rows, prompts, cand, base, ci_level, seed)
    lengths = [cand[i].get("n_tokens") or 0 for i in ids]
    result = {"benchmark": "heldout_winrate", "model_id": model_id, "win_rate": mean, "ci_low": lo, "ci_high": hi,
              "ci_level": ci_level, "ci_method": "percentile bootstrap over prompts (2000 resamples)",
              "n_prompts": len(ids), "judge": judge.identity, "judge_calls": judge.calls, "baseline": baseline_id,
              "data": str(prompts_path), "mean_response_tokens": sum(lengths) / len(lengths),
              "truncation_rate": truncation_rate([cand[i] for i in ids]), "judgments_file": str(out_judgments),
              **({"by_criterion": by_criterion} if by_criterion else {})}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result


def _criterion_votes(judge_cfg, rows, prompts, cand, base, ci_level, seed) -> dict | None:
    """A panel's per-criterion votes added to each judgment row (in place) and their win rates with CIs; None for
    any other judge, or a panel of one criterion (its votes are the win rate)."""
    from ..judges.panel import PanelJudge

    if judge_cfg.get("name") != "panel":
        return None
    panel = PanelJudge.from_config(judge_cfg)
    if len(panel.criteria) < 2:
        return None
    for r in rows:
        i, p = r["prompt_id"], r["p_candidate_wins"]
        a, b = cand[i]["text"], base[i]["text"]
        if not (a.strip() and b.strip()):   # on_empty decided the pair, not the criteria
            r["votes"] = {c: p for c in panel.criteria}
            continue
        r["votes"] = panel.votes(prompts[i], a, b)
        if abs(sum(r["votes"].values()) / len(panel.criteria) - p) > 1e-9:
            raise RuntimeError(f"prompt {i}: the panel's votes {r['votes']} do not average to its P = {p}; the judge "
                               "cache may hold another panel's answers")
    out = {}
    for c in panel.criteria:
        m, lo, hi = bootstrap_mean_ci([r["votes"][c] for r in rows], ci_level, seed=seed)
        out[c] = {"win_rate": m, "ci_low": lo, "ci_high": hi}
    return out
