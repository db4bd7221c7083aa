"""Does what a round's first steps learn carry to pairs the model has not trained on yet? Read off train_metrics.jsonl.

Each training step logs its loss and its loss's `margin` (the mean log-ratio difference h of the batch's pairs,
oriented to the label's winner) computed *before* that step's update. In a round's first epoch every batch is one
the model has not seen this round, so the first epoch's steps after step 0 are a free held-out check of the
updates so far, on the algorithm's own data: the loss there against step 0's (what not moving at all gives), and
the mean margin (> 0: the updates so far already rank new pairs the label's way). Later epochs' steps are on seen
batches. Offline data (DPO's pairs, SPAC's offline pairs) are the same every round, so from round 2 on their
"unseen" batches were seen in earlier rounds; online algorithms' (WIND, INPO, SPPO, iterative DPO) are new
samples each round. No generation, no judge: it reads the study's logs only (training data, nothing held-out).

Usage: python bench/unseen_batches.py --runs results/runs --algos inpo wind spac [--rounds 1 2] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def summarise(rows: list[dict]) -> dict:
    """The first epoch's steps after step 0 (unseen batches) against step 0 and the later epochs (seen ones)."""
    if not rows:
        raise SystemExit("train_metrics.jsonl has no steps (a skipped round?)")
    rows = sorted(rows, key=lambda r: r["step"])
    first_epoch = rows[0]["epoch"]
    unseen = [r for r in rows[1:] if r["epoch"] == first_epoch]
    seen = [r for r in rows if r["epoch"] != first_epoch]

    def mean(xs):
        return round(sum(xs) / len(xs), 4) if xs else None

    return {"steps": len(rows), "step0_loss": round(rows[0]["loss"], 4), "step0_margin": round(rows[0]["margin"], 4),
            "unseen_steps": len(unseen), "unseen_loss": mean([r["loss"] for r in unseen]),
            "unseen_margin": mean([r["margin"] for r in unseen]),
            "unseen_margin_positive": sum(r["margin"] > 0 for r in unseen),
            "seen_steps": len(seen), "seen_loss": mean([r["loss"] for r in seen]),
            "seen_margin": mean([r["margin"] for r in seen])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="results/runs", help="a study's runs folder: <algo>/r<R>/model/train_metrics.jsonl")
    ap.add_argument("--algos", nargs="+", required=True)
    ap.add_argument("--rounds", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.io import read_jsonl

    out = []
    for algo in a.algos:
        for r in a.rounds:
            f = Path(a.runs) / algo / f"r{r}" / "model" / "train_metrics.jsonl"
            if not f.is_file():
                raise SystemExit(f"{f}: not found (--runs must be a study's results/runs folder)")
            rows = read_jsonl(f, required=("step", "epoch", "loss", "margin"), allow_empty=True)
            out.append({"algorithm": algo, "round": r, **summarise(rows)})
            print(json.dumps(out[-1]), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"runs": str(a.runs), "rows": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
