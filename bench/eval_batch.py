"""Greedy evaluation generation (eval_generate's CTranslate2 path) at several batch sizes, in one run: tokens/s of
each, and whether its answers equal the first batch size's, text for text.

Why: eval_generate is the default study's largest stage after training (13 jobs, 256 held-out prompts each), and
its answers must not depend on a speed setting. A batch runs until its longest answer ends, so a larger batch
wastes more steps on finished answers and a smaller one uses the cores less; this measures where the balance is.

Usage (a study's SFT model and held-out prompts; numbers in bench/README.md):
    python bench/eval_batch.py --model results/sft/model --prompts results/prompts/eval_heldout.jsonl \
        --batch-sizes 64 256 16 --max-new-tokens 96 --threads 2 --out eval_batch.json
"""

from __future__ import annotations

import argparse
import json
import time

from gamealign.io import read_jsonl, write_json
from gamealign.sampling_ct2 import generate_ct2


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="a prompts JSONL (id, messages)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 16])
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args(argv)

    prompts = read_jsonl(a.prompts, required=("id", "messages"))
    runs, first = [], None
    for bs in a.batch_sizes:
        t0 = time.time()
        rows, stats = generate_ct2(a.model, prompts, 1, temperature=1.0, top_p=1.0, max_new_tokens=a.max_new_tokens,
                                   batch_size=bs, seed=0, greedy=True, threads=a.threads, desc=f"batch {bs}")
        texts = [r["text"] for r in rows]
        first = first or texts
        run = {"batch_size": bs, "wall_s": round(time.time() - t0, 2), "generate_s": stats["seconds"],
               "convert_s": stats["convert_s"], "new_tokens": stats["new_tokens"],
               "tokens_per_s": stats["tokens_per_second"],
               "same_answers_as_first": sum(x == y for x, y in zip(first, texts)), "n_prompts": len(prompts)}
        runs.append(run)
        print(json.dumps(run), flush=True)
    best = max(runs, key=lambda r: r["tokens_per_s"])
    for r in runs:
        r["speed_vs_best"] = round(r["tokens_per_s"] / best["tokens_per_s"], 3)
    result = {"model": a.model, "prompts": a.prompts, "max_new_tokens": a.max_new_tokens, "threads": a.threads,
              "runs": runs, "fastest_batch_size": best["batch_size"]}
    print(json.dumps({"fastest_batch_size": best["batch_size"],
                      "speed_vs_best": {r["batch_size"]: r["speed_vs_best"] for r in runs}}))
    if a.out:
        write_json(a.out, result)


if __name__ == "__main__":
    main()
