"""The comparison report: one row per algorithm × round (plus the SFT model), from eval and manifests.

Every number comes from a file the DAG produced: `eval/{model_id}/heldout_winrate.json` and the
training `manifest.json` of each model. Writes `comparison.md`, `comparison.csv` and figures.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import atomic_path, read_json


def collect(entries: list[dict]) -> pd.DataFrame:
    """entries: {algorithm, round, eval, manifest (or None for SFT)} → a tidy table."""
    rows = []
    for e in entries:
        ev = read_json(e["eval"])
        man = read_json(e["manifest"]) if e.get("manifest") else {}
        counts = man.get("counts", {})
        rows.append({
            "algorithm": e["algorithm"], "round": e["round"], "model_id": ev["model_id"],
            "win_rate": ev["win_rate"], "ci_low": ev["ci_low"], "ci_high": ev["ci_high"],
            "n_prompts": ev["n_prompts"], "mean_response_tokens": ev["mean_response_tokens"],
            "samples_cum": counts.get("samples_cum", 0), "judge_calls_cum": counts.get("judge_calls_cum", 0),
            "train_tokens": counts.get("train_tokens", 0), "train_examples": counts.get("train_examples", 0),
            "final_loss": man.get("final_loss"), "train_s": (man.get("timings") or {}).get("total_s"),
        })
    return pd.DataFrame(rows).sort_values(["round", "algorithm"], key=None).reset_index(drop=True)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(entries: list[dict], out_dir: str | Path, study: dict, provenance: dict) -> pd.DataFrame:
    df = collect(entries)
    df = pd.concat([df[df.algorithm == "sft"], df[df.algorithm != "sft"].sort_values(["algorithm", "round"])])
    df = df.reset_index(drop=True)
    any_eval = read_json(entries[0]["eval"])
    with atomic_path(out_dir, is_dir=True) as tmp:
        df.to_csv(tmp / "comparison.csv", index=False, float_format="%.6f")
        figs = tmp / "figures"
        figs.mkdir()
        _plot(df, figs)
        main = df[["algorithm", "round", "win_rate", "ci_low", "ci_high", "mean_response_tokens", "final_loss"]]
        trained = df[df.algorithm != "sft"]
        eff = trained[["algorithm", "round", "win_rate", "samples_cum", "judge_calls_cum", "train_tokens"]].copy()
        eff["win_rate_gain_per_1k_judge_calls"] = [
            (w - 0.5) / (j / 1000.0) if j else float("nan") for w, j in zip(eff.win_rate, eff.judge_calls_cum)]
        last = trained.sort_values("round").groupby("algorithm").tail(1).sort_values("win_rate", ascending=False)
        summary = last[["algorithm", "round", "win_rate", "ci_low", "ci_high", "samples_cum", "judge_calls_cum"]]
        md = [f"# Comparison report — {study.get('name', 'study')}", "",
              f"Judge: `{any_eval['judge']}`. Baseline: the SFT model's greedy responses. Data: "
              f"`{any_eval['data']}` ({any_eval['n_prompts']} held-out prompts). CI: {any_eval['ci_level']:.0%} "
              f"{any_eval['ci_method']}.", "",
              "## Summary (last round of each algorithm, best first)", "", _md_table(summary), "",
              "## Held-out win rate against the SFT model", "",
              "The SFT row is the model judged against itself (0.5 by construction).", "",
              _md_table(main), "",
              "![win rate vs round](figures/winrate_vs_round.png)", "",
              "![win rate vs mean response length](figures/winrate_vs_length.png)", "",
              "## Sample efficiency", "",
              "`samples_cum` / `judge_calls_cum`: responses generated and judge comparisons made for this "
              "algorithm's training data up to this round (the shared round-1 data counts for every algorithm "
              "that used it; SPAC's self-play samples need no judge). `train_tokens`: tokens through the "
              "policy in this round.", "",
              _md_table(eff), "",
              "![win rate vs samples](figures/winrate_vs_samples.png)", "",
              "![win rate vs judge calls](figures/winrate_vs_judge_calls.png)", "",
              "---",
              f"Generated from commit `{provenance.get('commit')}`{' (dirty tree)' if provenance.get('dirty') else ''}, "
              f"config hash `{provenance.get('config_hash', '')[:16]}`."]
        (tmp / "comparison.md").write_text("\n".join(md) + "\n")
    return df


def _plot(df: pd.DataFrame, figs: Path) -> None:
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
        ax.set_ylabel("win rate vs SFT")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(figs / f"{name}.png", dpi=120, metadata={"Software": None})
        plt.close(fig)
