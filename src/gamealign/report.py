"""The comparison report: one table per benchmark (rows = algorithm × round, SFT as round 0), a
summary, a sample-efficiency table, and figures.

Every number comes from a file the DAG produced: `eval/{model_id}/<benchmark>.json` and each model's
training `manifest.json`; `comparison.csv` names the source file of every row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import atomic_path, read_json


BENCH_TITLES = {"heldout": "Held-out win rate against the SFT model",
                "alpaca_eval": "AlpacaEval 2.0 (win rate and length-controlled win rate)",
                "arena_hard": "Arena-Hard-Auto v0.1 (Bradley–Terry score vs the baseline)"}


def collect(models: list[dict], scores: list[dict]) -> pd.DataFrame:
    """One row per (algorithm, round, benchmark): the score file's numbers plus the model's manifest counts."""
    manifests = {(m["algorithm"], m["round"]): (read_json(m["manifest"]) if m.get("manifest") else {}) for m in models}
    rows = []
    for s in scores:
        ev = read_json(s["path"])
        man = manifests.get((s["algorithm"], s["round"]), {})
        counts = man.get("counts", {})
        rows.append({
            "benchmark": s["benchmark"], "algorithm": s["algorithm"], "round": s["round"],
            "model_id": ev["model_id"], "win_rate": ev["win_rate"], "ci_low": ev["ci_low"], "ci_high": ev["ci_high"],
            "lc_win_rate": ev.get("lc_win_rate"), "n_prompts": ev["n_prompts"],
            "mean_response_tokens": ev["mean_response_tokens"], "truncation_rate": ev.get("truncation_rate"),
            "baseline": ev["baseline"],
            "samples_cum": counts.get("samples_cum", 0), "judge_calls_cum": counts.get("judge_calls_cum", 0),
            "train_truncation_rate": (counts["truncated"] / counts["samples"]) if counts.get("samples") else None,
            "train_tokens": counts.get("train_tokens", 0), "train_examples": counts.get("train_examples", 0),
            "train_steps": counts.get("train_steps", 0),
            "final_loss": man.get("final_loss"), "skipped": man.get("skipped") or "",
            "source": str(s["path"]),
        })
    df = pd.DataFrame(rows)
    df["is_sft"] = df.algorithm == "sft"
    df = df.sort_values(["benchmark", "is_sft", "algorithm", "round"], ascending=[True, False, True, True])
    return df.drop(columns="is_sft").reset_index(drop=True)


def md_table(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (floats to 3 decimals, NaN/None as empty cells)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if v is None or (isinstance(v, float) and v != v):
                cells.append("")
            else:
                cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _budget_line(config: dict) -> str:
    train = config.get("train", {})
    if train.get("steps_per_round"):
        return (f"**Budget rule**: {train['steps_per_round']} optimizer steps of {train.get('batch_size')} examples "
                "per round for every algorithm (`train.steps_per_round`).")
    return (f"**Budget rule**: {train.get('epochs')} epoch(s) over each round's examples (`train.epochs`): "
            "algorithms whose rounds yield more examples also take more optimizer steps (`train_steps`).")


def _judge_name(judge: dict) -> str:
    name = judge.get("name", "?")
    if name == "panel":
        return f"panel ({', '.join(judge.get('criteria', []))})"
    if name == "http":
        return f"http ({judge.get('http', {}).get('model', '?')})"
    return f"{name} ({judge.get('path')})"


def _judges_lines(config: dict) -> list[str]:
    """The annotator, the evaluation judge, and a warning when they are one and the same."""
    annotator = config.get("judge")
    if annotator is None:
        return []
    evaluator = config.get("evaluation", {}).get("judge") or annotator
    lines = [f"Annotator (training labels): {_judge_name(annotator)}. Evaluation judge (win-rate benchmarks): "
             f"{_judge_name(evaluator)}.", ""]
    if evaluator == annotator:
        lines = [f"> **Warning:** the evaluation judge is the annotator ({_judge_name(annotator)}): every model is "
                 "scored by the very judge its training data came from, so win rates measure agreement with "
                 "that judge as much as quality. Set `evaluation.judge` to an independent one.", ""] + lines
    return lines


def _provenance_line(ev: dict) -> str:
    judge = ev["judge"]
    judge_txt = judge.get("name", "?") + (f" (criteria: {', '.join(judge['criteria'])})" if "criteria" in judge else "")
    return (f"Judge: {judge_txt}. Baseline: `{ev['baseline']}`. Data: `{ev['data']}` ({ev['n_prompts']} prompts). "
            f"CI: {ev['ci_level']:.0%} {ev['ci_method']}." + (f" LC GLM: {ev['lc_glm']}." if ev.get("lc_glm") else ""))


def collect_leaderboard(scores: list[dict]) -> pd.DataFrame:
    """One row per (algorithm, round): each Open LLM Leaderboard task's metric and stderr, and the average."""
    rows = []
    for s in scores:
        ev = read_json(s["path"])
        row = {"algorithm": s["algorithm"], "round": s["round"], "model_id": ev["model_id"]}
        for task, t in ev["tasks"].items():
            row[task] = t["value"]
            row[f"{task}_stderr"] = t["stderr"]
            row[f"{task}_n"] = t["n_items"]
        row.update(average=ev["average"], n_tasks=ev["n_tasks"], source=str(s["path"]))
        rows.append(row)
    df = pd.DataFrame(rows)
    df["is_sft"] = df.algorithm == "sft"
    return df.sort_values(["is_sft", "algorithm", "round"], ascending=[False, True, True]).drop(
        columns="is_sft").reset_index(drop=True)


def _leaderboard_section(lb: pd.DataFrame, first: dict) -> list[str]:
    from .evaluation.leaderboard import LEADERBOARD

    tasks = [t for t in LEADERBOARD if t in first["tasks"]]
    first = {**first, "tasks": {t: first["tasks"][t] for t in tasks}}
    shown = lb[["algorithm", "round"]].copy()
    for t in tasks:
        shown[t] = [f"{v:.3f} ± {e:.3f}" if e == e and e is not None else f"{v:.3f}"
                    for v, e in zip(lb[t], lb[f"{t}_stderr"])]
    shown["average"] = lb["average"]
    metrics = ", ".join(f"{t} {v['num_fewshot']}-shot {v['metric']}" for t, v in first["tasks"].items())
    subs = [f"- {t}: {v['substitution']}" for t, v in first["tasks"].items() if v.get("substitution")]
    n_items = ", ".join(f"{t} {v['n_items']}" for t, v in first["tasks"].items())
    lines = ["## Open LLM Leaderboard v1 (lm-evaluation-harness)", "",
             f"lm-evaluation-harness {first['lm_eval_version']}, HF backend, through `lm_eval.simple_evaluate`. "
             f"Tasks: {metrics}. Data: `{first['data']}` ({first['source']}); items per task: {n_items}"
             + (f" (limit {first['limit']} per task / MMLU subject)" if first.get("limit") else "") + ". "
             "± is lm-eval's standard error. Per-item results: `open_llm_samples.jsonl`; lm-eval's own output "
             "with the resolved task configs: `open_llm_lmeval.json` (both beside each score file).", ""]
    if subs:
        lines += ["What replaces the splits the local data lacks:", *subs, ""]
    if not first.get("complete", True):
        lines += [f"Only {first['n_tasks']} of the six tasks ran: `average` is not the leaderboard average.", ""]
    return lines + [md_table(shown), "", "![leaderboard average vs round](figures/open_llm_vs_round.png)", ""]


def write_report(models: list[dict], scores: list[dict], out_dir: str | Path, config: dict,
                 provenance: dict) -> pd.DataFrame:
    lb_scores = [s for s in scores if s["benchmark"] == "open_llm"]
    df = collect(models, [s for s in scores if s["benchmark"] != "open_llm"])
    lb = collect_leaderboard(lb_scores) if lb_scores else None
    benches = [b for b in config["evaluation"]["benchmarks"] if b in set(df.benchmark)]
    primary = benches[0]
    # the provenance line of each table is read from a trained model's score file (the SFT row is
    # the baseline against itself, with no bootstrap and no LC fit)
    first_file = {b: next((s["path"] for s in scores if s["benchmark"] == b and s["algorithm"] != "sft"),
                          next(s["path"] for s in scores if s["benchmark"] == b)) for b in benches}
    with atomic_path(out_dir, is_dir=True) as tmp:
        df.to_csv(tmp / "comparison.csv", index=False, float_format="%.6f")
        figs = tmp / "figures"
        figs.mkdir()
        if lb is not None:
            lb.to_csv(tmp / "leaderboard.csv", index=False, float_format="%.6f")
            _plot_leaderboard(lb, figs)
        prim = df[df.benchmark == primary]
        _plot(prim, figs, primary)
        trained = prim[prim.algorithm != "sft"]
        last = trained.sort_values("round").groupby("algorithm").tail(1).sort_values("win_rate", ascending=False)
        md = [f"# Comparison report — {config['study'].get('name', 'study')}", "",
              f"Every number below is read from the files named in `comparison.csv` (column `source`) under "
              f"`results/eval/`; rows are algorithm × round, with the SFT model as round 0. Primary benchmark: "
              f"`{primary}`.", "", *_judges_lines(config),
              f"## Summary ({primary}, last round of each algorithm, best first)", "",
              md_table(last[["algorithm", "round", "win_rate", "ci_low", "ci_high", "samples_cum", "judge_calls_cum"]]),
              ""]
        for b in benches:
            sub = df[df.benchmark == b]
            cols = ["algorithm", "round", "win_rate", "ci_low", "ci_high"]
            if b == "alpaca_eval":
                cols.append("lc_win_rate")
            cols += ["mean_response_tokens", "truncation_rate"]
            md += [f"## {BENCH_TITLES.get(b, b)}", "", _provenance_line(read_json(first_file[b])), "",
                   md_table(sub[cols]), ""]
            if b == "alpaca_eval" and sub["lc_win_rate"].isna().any():
                md += ["A blank `lc_win_rate` means the GLM was not estimable for that model (e.g. its answers "
                       "have the same lengths as the reference's); the reason is in its `alpaca_eval.json`.", ""]
        if lb is not None:
            trained_lb = [s["path"] for s in lb_scores if s["algorithm"] != "sft"]
            md += _leaderboard_section(lb, read_json(trained_lb[0] if trained_lb else lb_scores[0]["path"]))
        md += ["![win rate vs round](figures/winrate_vs_round.png)", "",
               "![win rate vs mean response length](figures/winrate_vs_length.png)", "",
               "## Sample efficiency", "",
               "`samples_cum`: responses generated for this algorithm's training data up to this round (the "
               "shared round-1 data counts for every algorithm that used it). `judge_calls_cum`: the judge "
               "comparisons its examples read, up to this round — all K(K−1)/2 pairs of a group for the "
               "win-rate algorithms, ⌊K/2⌋ for WIND, the tournament's matches for INPO; SPAC's self-play samples "
               "need none. Annotation judges only the pairs these plans read (round 1, shared, the union of every "
               "algorithm's plan; its count is `judge_comparisons_made` in the train manifest). `train_tokens`: tokens through the "
               "policy in this round. `train_truncation_rate`: share of this round's training samples cut at "
               f"max_new_tokens (sampling.truncated: {config.get('sampling', {}).get('truncated', 'keep')}); `truncation_rate` in the "
               f"benchmark tables: the same for the evaluated answers. Win rate: `{primary}`.", ""]
        eff = trained[["algorithm", "round", "win_rate", "samples_cum", "judge_calls_cum", "train_examples",
                       "train_steps", "train_tokens", "train_truncation_rate", "final_loss", "skipped"]].copy()
        md += [_budget_line(config), ""]
        if (eff.skipped != "").any():
            md += ["**Skipped rounds**: a row with `skipped` set had no usable training examples; its model is the "
                   "previous round's, unchanged (reason in the cell and in its train manifest).", ""]
        eff["gain_per_1k_judge_calls"] = [(w - 0.5) / (j / 1000.0) if j else float("nan")
                                          for w, j in zip(eff.win_rate, eff.judge_calls_cum)]
        md += [md_table(eff), "",
               "![win rate vs samples](figures/winrate_vs_samples.png)", "",
               "![win rate vs judge calls](figures/winrate_vs_judge_calls.png)", "",
               "---",
               f"Generated from commit `{provenance.get('commit')}`{' (dirty tree)' if provenance.get('dirty') else ''}, "
               f"config hash `{provenance.get('config_hash', '')[:16]}`."]
        (tmp / "comparison.md").write_text("\n".join(md) + "\n")
    return df


def _plot(df: pd.DataFrame, figs: Path, bench: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft = df[df.algorithm == "sft"]
    for x, label, name in [("round", "round (0 = SFT)", "winrate_vs_round"),
                           ("samples_cum", "responses sampled (cumulative)", "winrate_vs_samples"),
                           ("judge_calls_cum", "judge comparisons (cumulative)", "winrate_vs_judge_calls"),
                           ("mean_response_tokens", "mean response length (tokens)", "winrate_vs_length")]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for algo, sub in df[df.algorithm != "sft"].groupby("algorithm"):
            sub = pd.concat([sft.assign(algorithm=algo), sub]).sort_values("round")
            yerr = [sub["win_rate"] - sub["ci_low"], sub["ci_high"] - sub["win_rate"]]
            ax.errorbar(sub[x], sub["win_rate"], yerr=yerr, marker="o", capsize=3, label=algo)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.set_ylabel(f"{bench} win rate")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(figs / f"{name}.png", dpi=120, metadata={"Software": None})
        plt.close(fig)


def _plot_leaderboard(lb: pd.DataFrame, figs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft = lb[lb.algorithm == "sft"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for algo, sub in lb[lb.algorithm != "sft"].groupby("algorithm"):
        sub = pd.concat([sft.assign(algorithm=algo), sub]).sort_values("round")
        ax.plot(sub["round"], sub["average"], marker="o", label=algo)
    ax.set_xlabel("round (0 = SFT)")
    ax.set_ylabel("Open LLM Leaderboard average")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figs / "open_llm_vs_round.png", dpi=120, metadata={"Software": None})
    plt.close(fig)
