"""Multi-round sweep of a study's learning rate, scored on its validation prompts at every round (never the held-out ones).

bench/lr_sweep.py scores round 1 only; the report's number is the last round's, and a gain of round 1 need not
survive round 2 (the default study: INPO 0.521 held-out after round 1, 0.512 after round 2). This script runs the
study's own DAG — real Snakemake, the study's rules and seeds, each algorithm's own data between rounds — once per
learning rate in a scratch folder, up to `runs/<algo>/r<R>/model` (no evaluation stage), then scores every round's
model the way lr_sweep does: greedy answers to the validation prompts (`prompts.n_validation`, disjoint from the
held-out set), their win rate against the SFT model's under the evaluation judge (95 % bootstrap CI over prompts)
and the IFEval-style prompt-level accuracy. Prints one JSON row per (lr, algorithm, round) and writes them all.

Usage: python bench/round_sweep.py --config config.yaml --algos inpo wind spac --lrs 1e-4 5e-5 --work results-rsweep

`--baseline DIR` (another sweep's --work folder, e.g. the default's beside a variant config's, same validation prompts)
adds to each row its paired difference against that sweep's same lr, algorithm and round: the mean over the validation
prompts of (this model's P(win against SFT) − the baseline model's), with a 95 % bootstrap CI over prompts. At 64
prompts a win rate against SFT has a CI of about ±0.03 and so does a paired difference; a rule such as "+0.02" needs
this to say whether a variant's gain is more than noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lr_sweep import gamealign, job_threads, js, read_json, score, sft_ifeval, study_args   # bench/ is this script's folder, first on sys.path

REPO = Path(__file__).resolve().parents[1]


def paired_difference(variant: Path, baseline: Path) -> dict:
    """Mean over prompts of P(variant's answer beats SFT's) − P(baseline's answer beats SFT's), from two judgments.jsonl
    files scored on the same prompts, with a 95 % bootstrap CI over prompts."""
    from gamealign.evaluation.stats import bootstrap_mean_ci
    from gamealign.io import read_jsonl

    v, b = ({r["prompt_id"]: r["p_candidate_wins"] for r in read_jsonl(f)} for f in (variant, baseline))
    if set(v) != set(b):
        raise SystemExit(f"--baseline: {variant} and {baseline} judge different prompts "
                         f"({len(set(v) - set(b))} only in the first, {len(set(b) - set(v))} only in the second)")
    mean, low, high = bootstrap_mean_ci([v[k] - b[k] for k in sorted(v)], n_boot=10000)
    return {"mean": round(mean, 4), "ci": [round(low, 4), round(high, 4)], "prompts": len(v)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--algos", nargs="+", required=True)
    ap.add_argument("--lrs", nargs="+", type=float, required=True)
    ap.add_argument("--work", default="results-rsweep", help="scratch folder: one Snakemake working folder per lr")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--baseline", help="another sweep's --work folder: each row's paired difference against its model")
    a = ap.parse_args()

    import yaml

    from gamealign.config import load_config

    cfg = load_config(a.config)
    if not cfg["prompts"]["n_validation"]:
        raise SystemExit(f"{a.config}: prompts.n_validation is 0; the sweep is scored on validation prompts only")
    unknown = set(a.algos) - set(cfg["algorithms"])
    if unknown:
        raise SystemExit(f"{a.config}: --algos {sorted(unknown)} not in its algorithms section")
    rounds, threads = cfg["study"]["rounds"], job_threads(cfg)
    args = study_args(cfg)
    gen = ["--params", js(cfg["evaluation"]), "--backend", cfg["sampling"]["backend"], "--threads", threads, *args["model"]]

    # the rules call `gamealign`: this interpreter's bin folder first on PATH, as in an activated environment
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    rows = []
    for lr in a.lrs:
        w = Path(a.work).resolve() / f"lr{lr:g}"
        w.mkdir(parents=True, exist_ok=True)
        # the study's config with this lr and only the swept algorithms; the study's own train.report_to is left
        # out (a sweep's runs are not the study's tracked runs) and so is the game track (it does not depend on lr)
        variant = json.loads(json.dumps(cfg))
        variant["train"]["lr"] = lr
        variant["train"].pop("report_to", None)
        variant["algorithms"] = {k: v for k, v in cfg["algorithms"].items() if k in a.algos}
        variant["game"] = {"enabled": False}
        variant["study"].pop("seeds", None)
        (w / "config.yaml").write_text(yaml.safe_dump(variant, sort_keys=False))
        R = w / variant["study"]["results_dir"]
        targets = [f"{variant['study']['results_dir']}/runs/{algo}/r{r}/model" for algo in a.algos for r in range(1, rounds + 1)]
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(w),
                               "--profile", str(REPO / "workflow/profiles/local"), "--cores", str(a.cores),
                               "--configfile", str(w / "config.yaml"), "--", *targets],
                              capture_output=True, text=True, env=env)
        (w / "snakemake.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode:
            raise SystemExit(f"lr {lr:g}: snakemake failed (log: {w / 'snakemake.log'}):\n{proc.stderr[-3000:]}")
        dag_s = round(time.time() - t0, 1)
        val = str(R / "prompts/validation.jsonl")
        sft_answers = w / "sft_validation.jsonl"
        if not sft_answers.exists():
            gamealign("sample", "--greedy", "--model", str(R / "sft/model"), "--prompts", val, "--out", str(sft_answers), *gen)
        for algo in a.algos:
            for r in range(1, rounds + 1):
                model, d = R / f"runs/{algo}/r{r}/model", w / "scores" / f"{algo}_r{r}"
                d.mkdir(parents=True, exist_ok=True)
                wr, ife = score(model, val, sft_answers, d, gen, args["eval_judge"], w / "eval_judge.sqlite", f"{algo}-r{r}")
                man = read_json(model / "manifest.json")
                rows.append({"lr": lr, "algorithm": algo, "round": r, "hparams": cfg["algorithms"][algo],
                             "win_rate": round(wr["win_rate"], 3), "ci": [round(wr["ci_low"], 3), round(wr["ci_high"], 3)],
                             "ifeval_prompt_level": round(ife["prompt_level"], 3),
                             "mean_tokens": round(wr["mean_response_tokens"], 1),
                             "train_examples": man["counts"]["train_examples"], "final_loss": man["final_loss"],
                             "dag_seconds": dag_s})
                if a.baseline:
                    base = Path(a.baseline).resolve() / f"lr{lr:g}" / "scores" / f"{algo}_r{r}" / "judgments.jsonl"
                    if not base.is_file():
                        raise SystemExit(f"--baseline: {base} does not exist (no run of {algo} round {r} at lr {lr:g})")
                    rows[-1]["paired_vs_baseline"] = paired_difference(d / "judgments.jsonl", base)
                print(json.dumps(rows[-1]), flush=True)
    result = {"config": a.config, "rounds": rounds, "validation_prompts": cfg["prompts"]["n_validation"],
              "sft_ifeval_prompt_level": sft_ifeval(val, sft_answers, Path(a.work)), "runs": rows}
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
