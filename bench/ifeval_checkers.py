"""Our IFEval-style checkers against lm-evaluation-harness's (Google's), on the same answers.

`evaluation.ifeval.source: lm_eval` with `data: heldout` writes, for each held-out prompt, lm-eval's answer text and
Google's verdict on each instruction (`ifeval_items.jsonl`). This script checks the same texts with the project's
own checkers (`gamealign.constraints`, what `source: builtin` and the annotator's constraints vote use) and prints,
per constraint type and overall, how often the two agree, and both prompt-level accuracies with a paired bootstrap
CI of their difference. Disagreements come from the readings stated in gamealign/evaluation/ifeval.py
(IFEVAL_INSTRUCTIONS); a few examples of each are printed.

Usage: python bench/ifeval_checkers.py --prompts results/prompts/eval_heldout.jsonl
         --items results/eval/sft/ifeval_items.jsonl [--out ifeval_checkers.json]
"""

from __future__ import annotations

import argparse
import json

from gamealign.evaluation.ifeval import check
from gamealign.evaluation.stats import bootstrap_mean_ci
from gamealign.io import read_jsonl


def compare(prompts: list[dict], items: list[dict], examples: int = 2) -> dict:
    by_id = {p["id"]: p for p in prompts}
    per_type: dict[str, dict] = {}
    ours_all, theirs_all = [], []
    for it in items:
        p = by_id[it["prompt_id"]]
        mine = check(p, it["text"])
        if len(mine) != len(it["constraints"]):
            raise SystemExit(f"prompt {it['prompt_id']}: {len(mine)} constraints here, {len(it['constraints'])} in the items")
        for c, g in zip(mine, it["constraints"]):
            t = per_type.setdefault(c["type"], {"n": 0, "agree": 0, "ours_met": 0, "google_met": 0, "examples": []})
            t["n"] += 1
            t["agree"] += int(c["met"] == g["met"])
            t["ours_met"] += int(c["met"])
            t["google_met"] += int(g["met"])
            if c["met"] != g["met"] and len(t["examples"]) < examples:
                t["examples"].append({"prompt_id": it["prompt_id"], "constraint": {k: v for k, v in c.items() if k != "met"},
                                      "ours": c["met"], "google": g["met"], "text": it["text"][:300]})
        ours_all.append(float(all(c["met"] for c in mine)))
        theirs_all.append(float(it["all_met"]))
    n = sum(t["n"] for t in per_type.values())
    diff = bootstrap_mean_ci([a - b for a, b in zip(ours_all, theirs_all)], n_boot=10000)
    return {"prompts": len(items), "instructions": n,
            "instruction_agreement": round(sum(t["agree"] for t in per_type.values()) / n, 4),
            "prompt_level_ours": round(sum(ours_all) / len(items), 4),
            "prompt_level_google": round(sum(theirs_all) / len(items), 4),
            "prompt_level_ours_minus_google": {"mean": round(diff[0], 4), "ci95": [round(diff[1], 4), round(diff[2], 4)]},
            "prompt_agreement": round(sum(a == b for a, b in zip(ours_all, theirs_all)) / len(items), 4),
            "per_type": {k: {**v, "agreement": round(v["agree"] / v["n"], 4)} for k, v in sorted(per_type.items())}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", required=True, help="the held-out prompts (meta.constraints)")
    ap.add_argument("--items", required=True, help="ifeval_items.jsonl of a source: lm_eval, data: heldout run")
    ap.add_argument("--out")
    a = ap.parse_args()
    res = compare(read_jsonl(a.prompts), read_jsonl(a.items))
    print(json.dumps({k: v for k, v in res.items() if k != "per_type"}, indent=1))
    for t, v in res["per_type"].items():
        print(f"{t:14s} n={v['n']:4d} agree={v['agreement']:.3f} ours_met={v['ours_met']:4d} google_met={v['google_met']:4d}")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
