"""The report of a study that stopped before its end: what it finished, nothing else.

A GPU study the machine's hold cuts short (bench/gpu_study.sh) leaves some models trained and some of them scored.
Snakemake's `report` rule needs every model and score, so it never runs. This builds the same `gamealign report`
index from what exists in a results folder — of the models and score files the workflow's report would have read
(`gamealign.study.report_index`), those that are there — runs the report on it, and writes beside it
`partial.json`: which models and scores were there and which the full study would have had. Every number in the report is one the study's own jobs computed; an
algorithm's rows stop at the last round it finished, and a benchmark shows only the models it scored.

    .venv/bin/python bench/partial_report.py --results docs/gpu-study-2026-11-25/results \
        --config docs/gpu-study-2026-11-25/config.yaml --out-dir docs/gpu-study-2026-11-25/report
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gamealign import study
from gamealign.config import config_hash, load_config, replicate_dir, without_runtime
from gamealign.io import read_json, write_json
from gamealign.report import write_report


def partial_index(results: Path, cfg: dict) -> tuple[dict, dict]:
    """(the report's index over what exists, {present, missing} model ids and score files). The full study's index
    is the workflow's own (`gamealign.study.report_index`, which the report rule passes), read under `results`."""
    full = study.report_index(cfg, root=str(results))
    reached = [m for m in full["models"] if m["manifest"] is None or Path(m["manifest"]).is_file()]
    key = lambda m: (m["seed"], m["algorithm"], m["round"])   # noqa: E731
    done = {key(m) for m in reached}
    # the model's id: the seed's folder part as the workflow names it ("" in a one-seed study)
    name = lambda m: ("sft" if m["algorithm"] == "sft" else   # noqa: E731
                      f"{replicate_dir(cfg, m['seed'])}{m['algorithm']}-r{m['round']}")
    scores, missing_scores = [], []
    for s in full["scores"]:
        if key(s) not in done:
            continue   # a model the study did not reach owes no score
        if Path(s["path"]).is_file():
            scores.append(s)
        else:
            missing_scores.append(f"{name(s)}/{s['benchmark']}")
    if not any(s["algorithm"] == "sft" for s in scores):
        raise SystemExit(f"partial_report: no score of the SFT model under {results}/eval/sft: nothing to compare")
    games = [g for g in full["games"] if (Path(g) / "curves.csv").is_file() and (Path(g) / "runs.csv").is_file()]
    summary = {"models_present": [name(m) for m in reached],
               "models_missing": [name(m) for m in full["models"] if key(m) not in done],
               "scores_present": len(scores),
               "scores_missing_of_trained_models": missing_scores, "games": [Path(g).name for g in games]}
    return {"models": reached, "scores": scores, "games": games}, summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True, type=Path, help="the study's results folder")
    ap.add_argument("--config", required=True, type=Path, help="the study's resolved config (YAML)")
    ap.add_argument("--out-dir", required=True, type=Path)
    ap.add_argument("--skip", nargs="*", default=[], metavar="BENCHMARK",
                    help="benchmarks of the config to leave out (e.g. ones whose per-prompt files did not come back)")
    ap.add_argument("--commit", help="the commit the study ran (its manifests' git_commit); default: theirs")
    a = ap.parse_args(argv)
    # resolved as the workflow resolves it (schema defaults), and hashed as the report rule hashes it (no runtime knobs)
    cfg = without_runtime(load_config(str(a.config), check_paths=False))
    digest = config_hash(cfg)   # the study's config, before --skip narrows what this report reads
    unknown = sorted(set(a.skip) - set(cfg["evaluation"]["benchmarks"]))
    if unknown:
        raise SystemExit(f"partial_report: --skip {unknown}: not among the config's evaluation.benchmarks "
                         f"{cfg['evaluation']['benchmarks']}")
    cfg["evaluation"]["benchmarks"] = [b for b in cfg["evaluation"]["benchmarks"] if b not in a.skip]
    index, summary = partial_index(a.results, cfg)
    # the manifests name the commit the study ran; the report's provenance line should too, not this checkout's
    commit = a.commit or next((read_json(m["manifest"]).get("git", {}).get("commit")
                               for m in index["models"] if m["manifest"]), None)
    prov = {"commit": commit, "dirty": None, "config_hash": digest}
    df = write_report(index["models"], index["scores"], a.out_dir, cfg, prov, index["games"] or None)
    write_json(a.out_dir / "partial.json", summary)
    # said at the top of the report itself, so that no table of it is read as the whole study's
    md = a.out_dir / "comparison.md"
    title, _, rest = md.read_text().partition("\n")
    banner = (f"\n> **Partial report**: the study stopped before its end; this covers what it finished "
              f"(`bench/partial_report.py`). Models: {', '.join(summary['models_present'])}. Not reached: "
              f"{', '.join(summary['models_missing']) or 'none'}. "
              f"Scores the reached models lack: {len(summary['scores_missing_of_trained_models'])} "
              f"(`partial.json`)." + (f" Benchmarks left out here: {', '.join(a.skip)}." if a.skip else "") + "\n")
    md.write_text(title + "\n" + banner + rest)
    print(df.to_string(index=False))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
