"""Did a study's models learn their own training prompts? In-sample vs held-out win rates of a finished study.

For each algorithm in --algos and round R: the round-R model's greedy answers to the prompts it trained on
(`prompts/train_r<R>.jsonl`), their win rate against the SFT model's greedy answers to the same prompts under
the annotator (`judge`, what training optimised) and under the evaluation judge, with 95 % bootstrap CIs over
prompts, beside the study's own held-out win rate of that model (`eval/<algo>-r<R>/heldout_winrate.json`). A
model that wins on its training prompts and not on the held-out ones learned the prompts, not the behaviour (too
few prompts to generalise from); one that wins on neither did not move (too few steps, too small an lr).
Training prompts only: nothing here chooses a setting, and the held-out numbers are the study's, read, not made.

Usage: python bench/in_sample.py --config config.yaml --algos inpo wind spac --rounds 1 2 [--out in_sample.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lr_sweep import gamealign, job_threads, js, study_args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--algos", nargs="+", default=["inpo", "wind", "spac"])
    ap.add_argument("--rounds", nargs="+", type=int, default=[1])
    ap.add_argument("--work", default=None, help="scratch folder (default <results_dir>/in_sample)")
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.config import load_config, replicate_dir
    from gamealign.io import read_jsonl

    def ci(wr: dict) -> list[float]:
        return [round(wr["win_rate"], 3), round(wr["ci_low"], 3), round(wr["ci_high"], 3)]

    cfg = load_config(a.config)
    results = Path(cfg["study"]["results_dir"])
    seed = cfg["study"]["seed"]
    rep = replicate_dir(cfg, seed)                # "" for the study's own seed
    w = Path(a.work or results / "in_sample")
    w.mkdir(parents=True, exist_ok=True)
    args = study_args(cfg)
    gen = ["--params", js(cfg["evaluation"]), "--backend", cfg["sampling"]["backend"],
           "--threads", job_threads(cfg), *args["model"]]
    judges = {"annotator": args["judge"], "evaluation_judge": args["eval_judge"]}
    rows = []
    for r in a.rounds:
        prompts = results / "prompts" / f"train_r{r}.jsonl"   # every seed of a study trains on the same prompts
        sft_answers = w / f"sft_train_r{r}.jsonl"
        if not sft_answers.exists():
            gamealign("sample", "--greedy", "--model", str(results / "sft/model"), "--prompts", str(prompts),
                      "--out", str(sft_answers), *gen)
        sft_texts = {r["prompt_id"]: r["text"] for r in read_jsonl(sft_answers)}
        n_prompts = len(read_jsonl(prompts))
        for algo in a.algos:
            tag = f"{algo}-r{r}"
            model = results / rep / "runs" / algo / f"r{r}" / "model"
            answers = w / f"{tag}_train_r{r}.jsonl"
            gamealign("sample", "--greedy", "--model", str(model), "--prompts", str(prompts), "--out", str(answers), *gen)
            row = {"algorithm": algo, "round": r, "training_prompts": n_prompts}
            for name, judge in judges.items():
                out = w / f"{tag}_{name}.json"
                gamealign("judge-eval", "--prompts", str(prompts), "--candidate", str(answers), "--baseline",
                          str(sft_answers), *judge, "--out", str(out), "--judgments", str(w / f"{tag}_{name}.jsonl"),
                          "--cache", str(w / "judge.sqlite"), "--model-id", tag)
                row[f"in_sample_{name}"] = ci(json.loads(out.read_text()))
            held = results / rep / "eval" / tag / "heldout_winrate.json"
            if held.exists():
                row["heldout_evaluation_judge"] = ci(json.loads(held.read_text()))
            row["answers_identical_to_sft"] = sum(sft_texts.get(x["prompt_id"]) == x["text"] for x in read_jsonl(answers))
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"config": a.config, "results_dir": str(results), "seed": seed, "rows": rows}
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
