"""Per-stage wall time and memory of a study run, from Snakemake's `benchmark:` files.

Every rule that does work writes `<results>/benchmarks/<rule>/<job>.tsv` (Snakemake's benchmark
directive: wall seconds `s`, peak resident set `max_rss` in MB, `cpu_time` in seconds, one row per
repeat). `read_benchmarks` collects them, `summarise` folds them into one row per stage in DAG order.

These are measurements of one run on one machine. They are kept out of the comparison report on
purpose: the report must be a function of the computations (a rerun must reproduce it byte for byte),
and wall time is not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .io import DataError, atomic_path
from .report import md_table

# The study's stages in DAG order (DESIGN.md §2); rules not listed here follow, alphabetically.
STAGE_ORDER = ("prepare_sft", "prompts", "bench_data", "sample", "merge_samples", "annotate", "train",
               "eval_generate", "merge_generations", "eval_winrate", "eval_score", "eval_ifeval", "eval_leaderboard",
               "game", "report")
REQUIRED_COLUMNS = ("s", "max_rss", "cpu_time")


def _stage_rank(rule: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(rule) if rule in STAGE_ORDER else len(STAGE_ORDER), rule)


def read_benchmark(path: str | os.PathLike) -> dict:
    """One job's benchmark file → {s, max_rss_mb, cpu_s} (mean wall/CPU time over repeats, peak RSS)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a Snakemake benchmark file ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not a Snakemake benchmark file (no column {', '.join(missing)}; "
                        f"has {', '.join(map(str, df.columns))})")
    if df.empty:
        raise DataError(f"{path}:2: no measurement row")
    for col in REQUIRED_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise DataError(f"{path}:{line}: column {col} is not a number ({df[col][bad].iloc[0]!r})")
        df[col] = values
    return {"s": float(df.s.mean()), "max_rss_mb": float(df.max_rss.max()), "cpu_s": float(df.cpu_time.mean())}


def read_benchmarks(bench_dir: str | os.PathLike) -> pd.DataFrame:
    """Every `<bench_dir>/<rule>/<job>.tsv` as one row: rule, job, s, max_rss_mb, cpu_s (DAG order)."""
    bench_dir = Path(bench_dir)
    if not bench_dir.is_dir():
        raise DataError(f"{bench_dir}: no such folder (Snakemake writes the benchmark files there as jobs finish)")
    # <rule>/<job>.tsv, or <rule>/seed<N>/<job>.tsv for a replicate of a several-seed study
    paths = sorted(p for p in bench_dir.rglob("*.tsv") if len(p.relative_to(bench_dir).parts) >= 2)
    if not paths:
        raise DataError(f"{bench_dir}: no benchmark files (<rule>/<job>.tsv); run the study first")
    rows = []
    for p in paths:
        rule, *job = p.relative_to(bench_dir).with_suffix("").parts
        rows.append({"rule": rule, "job": "/".join(job), **read_benchmark(p)})
    rows.sort(key=lambda r: (_stage_rank(r["rule"]), r["job"]))
    return pd.DataFrame(rows)


def summarise(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per stage: jobs, job-seconds (sum of wall times), mean and max wall time, peak RSS, CPU s.

    Job-seconds add up jobs that may have run in parallel, so their total is not the study's wall time.
    """
    g = jobs.groupby("rule", sort=False)
    out = pd.DataFrame({"jobs": g.size(), "job_s": g.s.sum(), "mean_s": g.s.mean(), "max_s": g.s.max(),
                        "max_rss_mb": g.max_rss_mb.max(), "cpu_s": g.cpu_s.sum()}).reset_index()
    out = out.rename(columns={"rule": "stage"})
    total = {"stage": "all", "jobs": int(out.jobs.sum()), "job_s": jobs.s.sum(), "mean_s": jobs.s.mean(),
             "max_s": jobs.s.max(), "max_rss_mb": jobs.max_rss_mb.max(), "cpu_s": jobs.cpu_s.sum()}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    """Seconds to 0.1 s, memory to whole MB, as text (md_table prints floats to 3 decimals)."""
    out = df.copy()
    for col in out.columns:
        if col.endswith("_s") or col == "s":
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        elif col.endswith("_mb"):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    return out


def timings_markdown(jobs: pd.DataFrame, source: str) -> str:
    summary = summarise(jobs)
    return "\n".join([
        "# Per-stage timings", "",
        f"From Snakemake's benchmark files under `{source}` (one run, this machine). `job_s` adds the wall "
        "times of a stage's jobs, which may have run in parallel; `max_rss_mb` is the largest peak resident "
        "memory of one job (Snakemake samples it, so very short jobs may show less than they used).", "",
        md_table(_fmt(summary)), "", "## Jobs", "", md_table(_fmt(jobs)), ""])


def write_timings(bench_dir: str | os.PathLike, out_md: str | os.PathLike | None = None,
                  out_csv: str | os.PathLike | None = None) -> tuple[pd.DataFrame, str]:
    """Read `bench_dir`, write the Markdown summary and the per-job CSV (atomically); return both."""
    jobs = read_benchmarks(bench_dir)
    md = timings_markdown(jobs, str(bench_dir))
    out_md = Path(out_md) if out_md else Path(bench_dir) / "timings.md"
    out_csv = Path(out_csv) if out_csv else Path(bench_dir) / "timings.csv"
    with atomic_path(out_md) as tmp:
        tmp.write_text(md)
    with atomic_path(out_csv) as tmp:
        jobs.to_csv(tmp, index=False)
    return jobs, md
