"""Benchmark scoring of one model's answers against a reference/baseline's answers.

- AlpacaEval: P(model ≻ reference) per instruction → raw win rate (bootstrap CI over instructions)
  and alpaca_eval's length-controlled win rate.
- Arena-Hard: each pair judged in both orders (model first, then baseline first) → two battles per
  question → Bradley–Terry score vs the baseline with a bootstrap CI.
Raw judgments are written next to each score; the score file names judge, baseline and data.
"""

from __future__ import annotations

from ..io import DataError, read_jsonl, write_json, write_jsonl
from ..judges import CachedJudge, JudgeCache, make_judge
from . import arena_hard as AH
from .stats import bootstrap_mean_ci, truncation_rate


def load_answers(prompts_path, candidate_path, reference_path):
    """(prompts by id, candidate answers by prompt id, reference answers by prompt id, prompt ids in file order);
    a prompt without an answer in either file is a DataError naming the file."""
    prompts = {p["id"]: p for p in read_jsonl(prompts_path, required=("id", "messages"))}
    cand = {r["prompt_id"]: r for r in read_jsonl(candidate_path, required=("prompt_id", "text"))}
    ref = {r["prompt_id"]: r for r in read_jsonl(reference_path, required=("prompt_id", "text"))}
    ids = [i for i in prompts]
    for path, got in ((candidate_path, cand), (reference_path, ref)):
        missing = [i for i in ids if i not in got]
        if missing:
            raise DataError(f"{path}: no answer for {len(missing)} prompt(s), e.g. {missing[0]}")
    return prompts, cand, ref, ids


def is_the_baseline(cand: dict, ref: dict, ids: list[str]) -> bool:
    """Every answer is the reference's own (the SFT model scored against itself, or a round that changed no
    answer): its win rate is ½ exactly, by the identical-text rule, and no length or Bradley–Terry fit exists."""
    return all(cand[i]["text"] == ref[i]["text"] for i in ids)


def cached_judge(judge_cfg: dict, cache_path) -> CachedJudge:
    """The evaluation judge behind the study's judge cache (the identical-text rule included)."""
    return CachedJudge(make_judge(judge_cfg), JudgeCache(cache_path))


def score_alpaca_eval(*, prompts_path, candidate_path, reference_path, reference_name, judge_cfg, out_json,
                      out_judgments, cache_path=None, lc_glm="offline", ci_level=0.95, seed=0, model_id="") -> dict:
    from .alpaca_eval_metrics import length_controlled, to_annotations

    prompts, cand, ref, ids = load_answers(prompts_path, candidate_path, reference_path)
    judge = cached_judge(judge_cfg, cache_path)
    rows = [{"prompt_id": i, "p_model_wins": judge(prompts[i], cand[i]["text"], ref[i]["text"]),
             "model_chars": len(cand[i]["text"]), "reference_chars": len(ref[i]["text"])} for i in ids]
    p = [r["p_model_wins"] for r in rows]
    mean, lo, hi = bootstrap_mean_ci(p, ci_level, seed=seed)
    ann = to_annotations([prompts[i]["messages"][-1]["content"] for i in ids], [cand[i]["text"] for i in ids],
                         [ref[i]["text"] for i in ids], p, model=model_id or "model", baseline=reference_name)
    if is_the_baseline(cand, ref, ids):
        lc = {"length_controlled_winrate": 50.0, "lc_standard_error": 0.0, "lc_glm": "answers identical to the baseline's"}
    else:
        lc = length_controlled(ann, offline=(lc_glm == "offline"))
    result = {"benchmark": "alpaca_eval", "model_id": model_id, "win_rate": mean, "ci_low": lo, "ci_high": hi,
              "ci_level": ci_level, "ci_method": "percentile bootstrap over instructions (2000 resamples)",
              "lc_win_rate": lc["length_controlled_winrate"] / 100.0,
              "lc_standard_error": lc.get("lc_standard_error", 0.0) / 100.0, "lc_glm": lc["lc_glm"],
              "n_prompts": len(ids), "judge": judge.identity, "judge_calls": judge.calls,
              "baseline": reference_name, "data": str(prompts_path),
              "mean_response_tokens": sum(cand[i].get("n_tokens") or 0 for i in ids) / len(ids),
              "truncation_rate": truncation_rate([cand[i] for i in ids]),
              "mean_response_chars": sum(len(cand[i]["text"]) for i in ids) / len(ids),
              "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result


def score_arena_hard(*, prompts_path, candidate_path, reference_path, reference_name, judge_cfg, out_json,
                     out_judgments, cache_path=None, n_boot=100, ci_level=0.95, seed=0, model_id="",
                     bootstrap="question") -> dict:
    prompts, cand, ref, ids = load_answers(prompts_path, candidate_path, reference_path)
    judge = cached_judge(judge_cfg, cache_path)
    model, base = model_id or "model", f"baseline:{reference_name}"
    rows, battles, questions = [], [], []
    for i in ids:
        forward = judge(prompts[i], cand[i]["text"], ref[i]["text"])    # model shown first
        backward = judge(prompts[i], ref[i]["text"], cand[i]["text"])   # baseline shown first
        rows.append({"prompt_id": i, "p_model_wins_model_first": forward, "p_baseline_wins_baseline_first": backward})
        battles += [(model, base, forward), (base, model, backward)]
        questions += [i, i]
    if is_the_baseline(cand, ref, ids):
        scored = {"score": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n_battles": len(battles), "n_boot": 0,
                  "ci_level": ci_level, "bootstrap_unit": bootstrap}
    else:
        scored = AH.score(battles, model, base, n_boot=n_boot, level=ci_level, seed=seed, questions=questions,
                          unit=bootstrap)
    result = {"benchmark": "arena_hard", "model_id": model_id, "win_rate": scored["score"],
              "ci_low": scored["ci_low"], "ci_high": scored["ci_high"], "ci_level": ci_level,
              "ci_method": f"Bradley-Terry fit, percentile bootstrap over {scored['bootstrap_unit']}s "
                           f"({scored['n_boot']} rounds)",
              "n_prompts": len(ids), "n_battles": scored["n_battles"], "judge": judge.identity,
              "judge_calls": judge.calls, "baseline": reference_name, "data": str(prompts_path),
              "mean_response_tokens": sum(cand[i].get("n_tokens") or 0 for i in ids) / len(ids),
              "truncation_rate": truncation_rate([cand[i] for i in ids]),
              "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result

