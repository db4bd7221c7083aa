"""What each algorithm's training pairs carry: label accuracy, ties and length contrast of one round's data.

For a study's round data (samples.jsonl + prefs.parquet: the shared round 1 by default, which every algorithm
reads) and each algorithm in --algos with the study's hyper-parameters: the algorithm's own `build_examples`
on those groups, and for its two-response examples (y_0, y_1, label z; z = 1 when the example carries none, y_0
being its chosen answer):
  - `examples_per_prompt`;
  - `annotator_margin`: |P(y_0 ≻ y_1) − ½|, how far apart the annotator holds the pair (½: one answer wins on
    every criterion; 0: tied overall);
  - `label_agreement`: the annotator's probability that the label's winner beats its loser,
    z·P(y_0 ≻ y_1) + (1 − z)·(1 − P(y_0 ≻ y_1)) — ½ + margin for a label on the annotator's side of ½, ½ for a
    coin flip on a tie, and for a label drawn from P itself P² + (1 − P)² (it agrees with a fresh draw);
  - `tied`: the share of examples whose pair the annotator ties overall (P = ½);
  - `winner_minus_loser_tokens`: (2z − 1)·(n_tokens(y_0) − n_tokens(y_1)), the length the label favours;
  - `winner_cut`, `loser_cut`: the share of the label's winners and losers cut at max_new_tokens.
Expectations over the labels an algorithm draws (WIND's sampled label: z ∈ {0, 1} with mean P, so its exact
expectation is taken, not one draw) and averaged over --draws comparison-plan seeds (WIND's pairing, INPO's
bracket), so the numbers describe the algorithm's data, not one draw of it. Labels are read as the examples
carry them: iterative DPO's label smoothing and SPPO's win-rate targets are losses' readings, not labels, so
both count their chosen answer as the winner (their rows equal DPO's: the same best-vs-worst pairs). Training
data only: nothing here is held-out.

Usage: python bench/pair_contrast.py --config config.yaml --algos dpo iterative_dpo sppo inpo wind [--round-dir
results/runs/shared/r1] [--draws 20] [--out pair_contrast.json]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np


def contrast(algo, groups: list, tokens: dict[tuple[str, str], int], cut: dict[tuple[str, str], bool],
             draws: int) -> dict:
    """The statistics above for one algorithm over `draws` plan seeds (groups are re-seeded in place)."""
    from gamealign.algorithms.wind import WIND

    rows = []
    n_examples = 0
    for d in range(draws):
        for g in groups:
            g.plan_seed = d
        rng = random.Random(d)
        if isinstance(algo, WIND) and algo.hparams.get("label", "sample") == "sample":
            # the sampled label's expectation: the planned pair with z = P (same pairs, no coin)
            algo = type(algo)(**{**algo.hparams, "label": "soft"})
        examples = [ex for ex in algo.build_examples(groups, rng) if len(ex.responses) == 2]
        n_examples += len(examples)
        by_id = {g.prompt_id: g for g in groups}
        for ex in examples:
            g = by_id[ex.prompt_id]
            i, j = (g.responses.index(y) for y in ex.responses)
            z = float(ex.fields.get("label", 1.0))
            p = g.pref(i, j)
            a, b = (g.prompt_id, ex.responses[0]), (g.prompt_id, ex.responses[1])
            rows.append({"margin": abs(p - 0.5), "agree": z * p + (1 - z) * (1 - p), "tied": float(np.isclose(p, 0.5)),
                         "dlen": (2 * z - 1) * (tokens[a] - tokens[b]),
                         "w_cut": z * cut[a] + (1 - z) * cut[b], "l_cut": z * cut[b] + (1 - z) * cut[a]})
    if not rows:
        return {"examples_per_prompt": 0.0}
    mean = lambda k: round(float(np.mean([r[k] for r in rows])), 3)
    return {"examples_per_prompt": round(n_examples / draws / len(groups), 3), "annotator_margin": mean("margin"),
            "label_agreement": mean("agree"),
            "tied": mean("tied"), "winner_minus_loser_tokens": mean("dlen"), "winner_cut": mean("w_cut"),
            "loser_cut": mean("l_cut")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--algos", nargs="+", default=["dpo", "iterative_dpo", "sppo", "inpo", "wind"])
    ap.add_argument("--round-dir", help="a folder with samples.jsonl and prefs.parquet (default: the shared round 1)")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--variant", action="append", default=[], metavar="ALGO.KEY=VALUE",
                    help="an extra row: the algorithm with one hyper-parameter changed, e.g. wind.label=verdict")
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.algorithms import get_algorithm
    from gamealign.config import load_config
    from gamealign.io import DataError, read_jsonl
    from gamealign.training import load_groups

    cfg = load_config(a.config)
    rd = Path(a.round_dir or Path(cfg["study"]["results_dir"]) / "runs/shared/r1")
    # as training reads them: under sampling.truncated: drop the cut answers and their pairs are not there
    groups = load_groups(rd / "samples.jsonl", rd / "prefs.parquet", drop_truncated=cfg["sampling"]["truncated"] == "drop")
    samples = read_jsonl(rd / "samples.jsonl")
    tokens = {(s["prompt_id"], s["text"]): s.get("n_tokens") or len(s["text"].split()) for s in samples}
    cut = {(s["prompt_id"], s["text"]): s.get("finish_reason") == "length" for s in samples}
    runs = [(name, cfg["algorithms"].get(name, {})) for name in a.algos]
    for v in a.variant:
        key, value = v.split("=", 1)
        name, hp = key.split(".", 1)
        runs.append((f"{name} ({hp}={value})", {**cfg["algorithms"].get(name, {}), hp: yaml_value(value)}))
    out = {"round_dir": str(rd), "prompts": len(groups), "draws": a.draws, "algorithms": {}}
    for label, hparams in runs:
        algo = get_algorithm(label.split(" ")[0], hparams)
        try:
            out["algorithms"][label] = contrast(algo, groups, tokens, cut, a.draws)
        except DataError as exc:   # a later round's annotation judged only its own plan's pairs
            raise SystemExit(f"{rd}: {label} read a pair its annotation did not judge ({exc}); use a round whose "
                             "every pair is judged (the shared round 1 of a study with an 'all' plan)") from exc
        print(json.dumps({label: out["algorithms"][label]}), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


def yaml_value(text: str):
    import yaml

    return yaml.safe_load(text)


if __name__ == "__main__":
    main()
