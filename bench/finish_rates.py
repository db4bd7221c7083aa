"""How long the policy's answers are, per built-in prompt style: what `max_new_tokens` a study needs.

Samples --k answers to --prompts validation-style prompts of each style (`prompts.style`) from the model with
the CTranslate2 backend up to --max-new-tokens, and prints, per style, the median answer length and the
share of answers that end (EOS) within each budget in --budgets. An answer cut at a budget is one the
study would train on unfinished (DESIGN.md §3: finish_reason "length"). The prompts are drawn with a seed
of their own, so they are not the study's held-out prompts.

Usage: python bench/finish_rates.py --model results/sft/model --prompts 32 --k 2 --max-new-tokens 256
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--budgets", type=int, nargs="+", default=[48, 64, 96, 128, 192])
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--styles", nargs="+", default=["open", "short"])
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.prompts import builtin_prompts
    from gamealign.sampling_ct2 import generate_ct2

    results = {"model": a.model, "prompts": a.prompts, "k": a.k, "max_new_tokens": a.max_new_tokens,
               "temperature": a.temperature, "top_p": a.top_p}
    for style in a.styles:
        prompts = builtin_prompts(a.prompts, seed=a.seed, style=style)
        rows, stats = generate_ct2(a.model, prompts, a.k, temperature=a.temperature, top_p=a.top_p,
                                   max_new_tokens=a.max_new_tokens, batch_size=64, seed=a.seed, threads=a.threads,
                                   desc=style)
        # an answer that ended: its length; one cut at the cap: longer than any budget below the cap
        lengths = np.array([r["n_tokens"] if r["finish_reason"] == "stop" else np.inf for r in rows])
        results[style] = {"median_tokens": float(np.median(lengths)), "tokens_per_s": stats["tokens_per_second"],
                          **{f"finished_within_{b}": float(np.mean(lengths <= b)) for b in a.budgets},
                          f"finished_within_{a.max_new_tokens}": float(np.mean(np.isfinite(lengths)))}
    print(json.dumps(results, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
