"""Instruction following, IFEval-style (Zhou et al. 2023, arXiv 2311.07911), on the held-out prompts.

Every built-in prompt carries verifiable constraints (`meta.constraints`); a model's greedy answer is
checked with the same checkers that state them (`gamealign.constraints`), as IFEval's "strict" mode does
(the response as written; IFEval's "loose" variants that strip markdown or first/last lines are not
computed). Two accuracies, as IFEval reports them:

  prompt level       share of prompts whose constraints are all met
  instruction level  share of all constraints met (Σ met / Σ asked over prompts)

with percentile-bootstrap CIs over prompts (the instruction level as a ratio, prompts resampled whole).
No judge is involved, so this benchmark is independent of the annotator. Prompts without constraints
(e.g. from a prompt file) are skipped; a set with none is refused.
"""

from __future__ import annotations

import numpy as np

from .. import constraints as C
from ..io import DataError, read_jsonl, write_json, write_jsonl
from .stats import crossed_bootstrap_ci, truncation_rate


def check(prompt: dict, text: str) -> list[dict]:
    """Each constraint of `prompt` with whether `text` meets it."""
    return [{**c, "met": bool(C.satisfied(c, text))} for c in prompt.get("meta", {}).get("constraints") or []]


def score_ifeval(*, prompts_path, generations_path, out_json, out_items, ci_level=0.95, seed=0, model_id="") -> dict:
    prompts = [p for p in read_jsonl(prompts_path, required=("id", "messages")) if p.get("meta", {}).get("constraints")]
    if not prompts:
        raise DataError(f"{prompts_path}: no prompt has verifiable constraints (meta.constraints); ifeval needs "
                        "the built-in prompts or a prompt file that carries them")
    answers = {r["prompt_id"]: r for r in read_jsonl(generations_path, required=("prompt_id", "text"))}
    missing = [p["id"] for p in prompts if p["id"] not in answers]
    if missing:
        raise DataError(f"{generations_path}: no answer for {len(missing)} prompt(s), e.g. {missing[0]}")
    items = [{"prompt_id": p["id"], "constraints": check(p, answers[p["id"]]["text"])} for p in prompts]
    for it in items:
        it["all_met"] = all(c["met"] for c in it["constraints"])
    met = np.array([[sum(c["met"] for c in it["constraints"]) for it in items]], dtype=float)
    asked = np.array([[len(it["constraints"]) for it in items]], dtype=float)
    prompt_level = crossed_bootstrap_ci([[float(it["all_met"]) for it in items]], ci_level, seed=seed)
    inst_level = crossed_bootstrap_ci(met, ci_level, seed=seed, denominator=asked)
    per_type: dict[str, dict] = {}
    for it in items:
        for c in it["constraints"]:
            t = per_type.setdefault(c["type"], {"asked": 0, "met": 0})
            t["asked"] += 1
            t["met"] += int(c["met"])
    rows = [answers[p["id"]] for p in prompts]
    result = {"benchmark": "ifeval", "model_id": model_id,
              "prompt_level": prompt_level[0], "prompt_level_ci_low": prompt_level[1],
              "prompt_level_ci_high": prompt_level[2],
              "instruction_level": inst_level[0], "instruction_level_ci_low": inst_level[1],
              "instruction_level_ci_high": inst_level[2], "ci_level": ci_level,
              "ci_method": "percentile bootstrap over prompts (2000 resamples; instruction level as a ratio)",
              "mode": "strict", "n_prompts": len(items), "n_instructions": int(asked.sum()), "per_type": per_type,
              "checkers": "gamealign.constraints", "data": str(prompts_path),
              "mean_response_tokens": sum(r.get("n_tokens") or 0 for r in rows) / len(rows),
              "truncation_rate": truncation_rate(rows), "items_file": str(out_items)}
    write_jsonl(out_items, items)
    write_json(out_json, result)
    return result
