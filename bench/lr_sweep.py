"""Learning-rate sweep for a study's first round, scored on its validation prompts (never the held-out ones).

Runs the study's own stages through the `gamealign` CLI in a scratch folder, with the study config's sections:
prompts (which must set `prompts.n_validation`), round-1 sampling from the SFT model and its annotation
(once), then for every algorithm in --algos and learning rate in --lrs one training round, the trained model's
greedy answers to the validation prompts, and their win rate against the SFT model's answers under the
evaluation judge (95% bootstrap CI over prompts) plus the IFEval-style prompt-level accuracy. Prints a table
and writes it as JSON. Round 1 only: a setting that does not move the policy in round 1 will not in round 2.

Usage: python bench/lr_sweep.py --config config.yaml --sft results/sft/model --algos dpo inpo --lrs 1e-5 3e-5 1e-4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gamealign.io import read_json   # path-named errors for a missing or bad score / manifest file


def gamealign(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "gamealign", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"gamealign {args[0]} failed:\n{proc.stderr[-3000:]}")


def js(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def job_threads(cfg: dict) -> str:
    """Threads of each job these scripts run: they run one at a time, so all the machine's cores, never fewer than
    the study's threads_per_job (which the default sets to 1 for two jobs at once under Snakemake; the thread count
    changes no result: docs/bench-cpu-2026-12-07/job_threads.md)."""
    return str(max(cfg["study"]["threads_per_job"], os.cpu_count() or 1))


def study_args(cfg: dict) -> dict[str, list[str]]:
    """What the study's rules pass besides a stage's own params (workflow/rules/*.smk): the system prompt and
    trust_remote_code to every job that loads a checkpoint ("model"), and each judge with its runtime knobs
    (config.RUNTIME_KEYS) apart from what determines an output ("judge", "eval_judge")."""
    from gamealign.config import evaluation_judge, split_runtime

    def judge(section: dict) -> list[str]:
        determining, runtime = split_runtime("judge", section)
        return ["--judge", js(determining), "--runtime", js(runtime)]

    model = (["--system-prompt", cfg["model"]["system_prompt"]] if cfg["model"]["system_prompt"] else []) + \
        (["--trust-remote-code"] if cfg["model"]["trust_remote_code"] else [])
    return {"model": model, "judge": judge(cfg["judge"]), "eval_judge": judge(evaluation_judge(cfg))}


def score(model, val: str, sft_answers: Path, out: Path, gen: list[str], eval_judge: list[str], cache: Path,
          model_id: str) -> tuple[dict, dict]:
    """`model`'s greedy answers to the validation prompts `val` (out/validation.jsonl), their win rate against the
    SFT model's answers under the evaluation judge and their IFEval-style accuracy: (winrate.json, ifeval.json)."""
    answers = out / "validation.jsonl"
    gamealign("sample", "--greedy", "--model", str(model), "--prompts", val, "--out", str(answers), *gen)
    gamealign("judge-eval", "--prompts", val, "--candidate", str(answers), "--baseline", str(sft_answers), *eval_judge,
              "--out", str(out / "winrate.json"), "--judgments", str(out / "judgments.jsonl"), "--cache", str(cache),
              "--model-id", model_id)
    gamealign("ifeval", "--prompts", val, "--generations", str(answers), "--out", str(out / "ifeval.json"),
              "--items", str(out / "ifeval_items.jsonl"))
    return read_json(out / "winrate.json"), read_json(out / "ifeval.json")


def sft_ifeval(val: str, sft_answers: Path, work: Path) -> float:
    """The SFT model's IFEval-style prompt-level accuracy on the validation prompts."""
    gamealign("ifeval", "--prompts", val, "--generations", str(sft_answers),
              "--out", str(work / "sft_ifeval.json"), "--items", str(work / "sft_ifeval_items.jsonl"))
    return read_json(work / "sft_ifeval.json")["prompt_level"]


def round1(a, cfg, w: Path, sample: list[str], judge: list[str], seed: int) -> None:
    """Prompts, round-1 samples of the SFT model and their annotation, and the SFT model's validation answers."""
    from gamealign.config import derive_seed

    gamealign("prompts", "--params", js(cfg["prompts"]), "--rounds", str(cfg["study"]["rounds"]),
              "--seed", str(derive_seed(seed, "prompts")), "--out-dir", str(w / "prompts"))
    gamealign("sample", "--model", a.sft, "--prompts", str(w / "prompts/train_r1.jsonl"), "--out", str(w / "samples.jsonl"),
              "--stats", str(w / "samples.stats.json"), "--params", js(cfg["sampling"]),
              "--seed", str(derive_seed(seed, "sample", "shared", 1)), *sample)
    gamealign("annotate", "--prompts", str(w / "prompts/train_r1.jsonl"), "--samples", str(w / "samples.jsonl"),
              "--out", str(w / "prefs.parquet"), "--stats", str(w / "prefs.stats.json"), *judge,
              "--cache", str(w / "judge.sqlite"), "--truncated", cfg["sampling"]["truncated"])
    gamealign("sample", "--greedy", "--model", a.sft, "--prompts", str(w / "prompts/validation.jsonl"),
              "--out", str(w / "sft_validation.jsonl"), "--params", js(cfg["evaluation"]), *sample)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--sft", required=True, help="the study's SFT model folder (prepare-sft output)")
    ap.add_argument("--algos", nargs="+", default=["dpo"])
    ap.add_argument("--lrs", nargs="+", type=float, required=True)
    ap.add_argument("--work", default="results-sweep",
                    help="scratch folder; reused, it keeps the round-1 data and SFT answers made with the same settings")
    ap.add_argument("--tag", default="", help="suffix of the run folders (a variant config's runs beside another's)")
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.config import derive_seed, load_config, split_runtime

    cfg = load_config(a.config)
    if not cfg["prompts"]["n_validation"]:
        raise SystemExit(f"{a.config}: prompts.n_validation is 0; the sweep is scored on validation prompts only")
    seed, threads = cfg["study"]["seed"], job_threads(cfg)
    w = Path(a.work)
    w.mkdir(parents=True, exist_ok=True)
    args = study_args(cfg)
    sample = ["--backend", cfg["sampling"]["backend"], "--threads", threads, *args["model"]]
    train, train_runtime = split_runtime("train", cfg["train"])
    train_runtime.pop("report_to", None)   # a sweep's runs are not the study's tracked runs
    # --work reused: the round-1 data and the SFT answers are kept when they came from the same settings
    stamp = js({k: cfg[k] for k in ("prompts", "sampling", "judge", "evaluation")} | {"seed": seed, "sft": a.sft})
    if (w / "stamp.json").exists() and (w / "stamp.json").read_text() == stamp and (w / "sft_validation.jsonl").exists():
        print(f"reusing the round-1 data and SFT answers in {w}", flush=True)
    else:
        (w / "stamp.json").unlink(missing_ok=True)
        round1(a, cfg, w, sample, args["judge"], seed)
        (w / "stamp.json").write_text(stamp)
    val, sft_answers = str(w / "prompts/validation.jsonl"), w / "sft_validation.jsonl"
    gen = ["--params", js(cfg["evaluation"]), *sample]

    rows = []
    for algo in a.algos:
        for lr in a.lrs:
            run = w / f"{algo}_lr{lr:g}{a.tag}"
            t0 = time.time()
            gamealign("train", "--algorithm", algo, "--hparams", js(cfg["algorithms"][algo]),
                      "--train", js({**train, "lr": lr}), "--runtime", js(train_runtime), "--init-model", a.sft, "--ref-model", a.sft,
                      "--prompts", str(w / "prompts/train_r1.jsonl"), "--samples", str(w / "samples.jsonl"),
                      "--prefs", str(w / "prefs.parquet"), "--pref-stats", str(w / "prefs.stats.json"),
                      "--sample-stats", str(w / "samples.stats.json"), "--truncated", cfg["sampling"]["truncated"],
                      "--plan-seed", str(derive_seed(seed, "plan", algo, 1)), "--out", str(run / "model"),
                      "--seed", str(derive_seed(seed, "train", algo, 1)), "--threads", threads, *args["model"],
                      *(["--selfplay", str(w / "samples.jsonl")] if algo == "spac" else []))
            wr, ife = score(run / "model", val, sft_answers, run, gen, args["eval_judge"], w / "judge.sqlite", run.name)
            man = read_json(run / "model/manifest.json")
            rows.append({"algorithm": algo, "hparams": cfg["algorithms"][algo], "lr": lr, "win_rate": round(wr["win_rate"], 3),
                         "ci": [round(wr["ci_low"], 3), round(wr["ci_high"], 3)],
                         "ifeval_prompt_level": round(ife["prompt_level"], 3), "final_loss": man["final_loss"],
                         "train_steps": man["counts"]["train_steps"], "seconds": round(time.time() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    result = {"config": a.config, "validation_prompts": cfg["prompts"]["n_validation"],
              "sft_ifeval_prompt_level": sft_ifeval(val, sft_answers, w), "runs": rows}
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
