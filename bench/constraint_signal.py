"""What the annotator's pairs can teach: per-constraint pass rates and the best-of-K ceiling, on non-held-out prompts.

For K answers of the policy to each of N prompts it prints
- per constraint type: how often an answer meets it, and on how many prompts the K answers disagree on it (a
  constraint no answer meets gives a pair no contrast to learn from, whatever the algorithm);
- the best-of-K ceiling: the answer the annotator (`judge`) ranks first among the K (highest mean preference over
  the others) against each of the other K − 1, judged by the annotator, by the evaluation judge
  (`evaluation.judge`) and by each of the evaluation judge's criteria alone, mean over prompts with a 95 %
  bootstrap CI over prompts. A policy that learned exactly the annotator's best-of-K choice would win about this
  much against a sample of the policy it started from; a trained policy's held-out win rate is a share of it.

The answers either come from sampling (--model: the CTranslate2 backend, prompts from the built-in generator
with a seed of their own, so not the study's held-out prompts) or from a study's files (--samples and
--prompt-file, e.g. results/runs/shared/r1/samples.jsonl and results/prompts/train_r1.jsonl: training prompts).

Usage: python bench/constraint_signal.py --config config.yaml --model results/sft/model --prompts 128 --k 4
       python bench/constraint_signal.py --config config.yaml --samples S.jsonl --prompt-file P.jsonl [...]
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np


def analyse(groups: list[tuple[dict, list[str]]], annotator, evaluator, criteria: list[str]) -> dict:
    """`groups`: (prompt, its K answers). Returns pass rates by constraint type and the best-of-K ceiling."""
    from gamealign import constraints as C
    from gamealign.evaluation.stats import bootstrap_mean_ci
    from gamealign.judges.panel import PanelJudge

    met = collections.defaultdict(list)        # type -> one bool per answer
    contrast = collections.defaultdict(list)   # type -> one bool per prompt: the K answers disagree
    ceiling = collections.defaultdict(list)    # judge -> one mean preference per prompt
    singles = {c: PanelJudge([c]) for c in criteria}
    for prompt, texts in groups:
        for c in (prompt.get("meta") or {}).get("constraints") or []:
            ok = [C.satisfied(c, t) for t in texts]
            met[c["type"]] += ok
            contrast[c["type"]].append(0 < sum(ok) < len(ok))
        k = len(texts)
        pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
        prefs = annotator.judge(prompt, texts, pairs)
        score = np.zeros(k)
        for (i, _), p in zip(pairs, prefs):
            score[i] += p / (k - 1)
        best = int(np.argmax(score))           # ties: the first, i.e. an arbitrary one of the tied
        against = [(best, j) for j in range(k) if j != best]
        ceiling["annotator"].append(float(np.mean(annotator.judge(prompt, texts, against))))
        ceiling["evaluation judge"].append(float(np.mean(evaluator.judge(prompt, texts, against))))
        for name, judge in singles.items():
            ceiling[f"evaluation criterion {name}"].append(float(np.mean(judge.judge(prompt, texts, against))))
    return {
        "prompts": len(groups),
        "answers_per_prompt": sorted({len(t) for _, t in groups}),
        "constraints": {t: {"answers": len(v), "met": round(float(np.mean(v)), 4),
                            "prompts": len(contrast[t]), "prompts_with_contrast": round(float(np.mean(contrast[t])), 4)}
                        for t, v in sorted(met.items())},
        "best_of_k_vs_others": {name: dict(zip(("mean", "ci_low", "ci_high"), (round(x, 4) for x in bootstrap_mean_ci(v))))
                                for name, v in ceiling.items()},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the study config whose judge and evaluation.judge are used")
    ap.add_argument("--model", help="sample from this model (CTranslate2 backend)")
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--style", default=None, help="prompts.style; default the config's")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default the config's sampling.max_new_tokens")
    ap.add_argument("--seed", type=int, default=54321, help="the prompts' and samples' seed (not the study's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", nargs="*", default=[], help="instead of --model: samples.jsonl files")
    ap.add_argument("--prompt-file", nargs="*", default=[], help="with --samples: the prompt files they answer")
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.config import evaluation_judge, load_config
    from gamealign.io import read_jsonl
    from gamealign.judges import make_judge

    cfg = load_config(a.config)
    annotator, evaluator = make_judge(cfg["judge"]), make_judge(evaluation_judge(cfg))
    criteria = list(getattr(evaluator, "criteria", ()))   # the panel's; another judge has no single criteria
    groups: list[tuple[dict, list[str]]] = []
    source: dict = {}
    if a.samples:
        prompts = {p["id"]: p for f in a.prompt_file for p in read_jsonl(f)}
        for f in a.samples:
            by = collections.defaultdict(list)
            for r in read_jsonl(f):
                by[r["prompt_id"]].append(r["text"])
            missing = [pid for pid in by if pid not in prompts]
            if missing:
                raise SystemExit(f"{f}: prompt {missing[0]} is in none of --prompt-file ({len(missing)} missing)")
            groups += [(prompts[pid], texts) for pid, texts in by.items()]
        source = {"samples": a.samples, "prompt_files": a.prompt_file}
    elif a.model:
        from gamealign.prompts import builtin_prompts
        from gamealign.sampling_ct2 import generate_ct2

        style = a.style or cfg["prompts"].get("style", "open")
        s = cfg["sampling"]
        max_new = a.max_new_tokens or s["max_new_tokens"]
        prompts = builtin_prompts(a.prompts, seed=a.seed, style=style)
        rows, _ = generate_ct2(a.model, prompts, a.k, temperature=s["temperature"], top_p=s["top_p"],
                               max_new_tokens=max_new, batch_size=s.get("batch_size", 64), seed=a.seed,
                               threads=a.threads, desc="constraint signal")
        by = collections.defaultdict(list)
        for r in rows:
            by[r["prompt_id"]].append(r["text"])
        groups = [(p, by[p["id"]]) for p in prompts]
        source = {"model": a.model, "style": style, "seed": a.seed, "k": a.k, "max_new_tokens": max_new,
                  "temperature": s["temperature"], "top_p": s["top_p"]}
    else:
        raise SystemExit("give --model, or --samples with --prompt-file")
    result = {"config": a.config, "annotator": annotator.identity(), "evaluation_judge": evaluator.identity(),
              "source": source, **analyse(groups, annotator, evaluator, criteria)}
    print(json.dumps(result, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
