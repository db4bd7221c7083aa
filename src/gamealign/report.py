"""The comparison report: one table per benchmark (rows = algorithm × round, SFT as round 0), a
summary, a sample-efficiency table, and figures.

Every number comes from a file the DAG produced: `eval/{model_id}/<benchmark>.json` and each model's
training `manifest.json`; `comparison.csv` names the source file of every row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation.registry import BENCHMARKS
from .io import atomic_path, read_json


def collect(models: list[dict], scores: list[dict]) -> pd.DataFrame:
    """One row per (algorithm, round, benchmark): the score file's numbers plus the model's manifest counts."""
    manifests = {(m.get("seed"), m["algorithm"], m["round"]): (read_json(m["manifest"]) if m.get("manifest") else {})
                 for m in models}
    rows = []
    for s in scores:
        ev = read_json(s["path"])
        man = manifests.get((s.get("seed"), s["algorithm"], s["round"]), {})
        counts = man.get("counts", {})
        rows.append({
            "benchmark": s["benchmark"], "algorithm": s["algorithm"], "round": s["round"], "seed": s.get("seed"),
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
    df["seed"] = df["seed"].astype("Int64")      # blank for the shared SFT model
    df = df.sort_values(["benchmark", "is_sft", "algorithm", "round", "seed"], ascending=[True, False, True, True, True])
    return df.drop(columns="is_sft").reset_index(drop=True)


def per_prompt_wins(source: str | Path, benchmark: str) -> dict[str, float]:
    """prompt_id → P(model ≻ baseline) for one score file (Arena-Hard: both orders averaged), read from the
    judgments file the score names."""
    from .io import read_jsonl

    per_prompt = BENCHMARKS[benchmark].per_prompt      # the registry's reading of a judgments row
    return {r["prompt_id"]: float(per_prompt(r)) for r in read_jsonl(read_json(source)["judgments_file"])}


def _seed_matrix(rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The seeds × prompts matrix of per-prompt wins of one model (its rows: one per seed)."""
    per_seed = [per_prompt_wins(src, b) for src, b in zip(rows.source, rows.benchmark)]
    prompts = sorted(per_seed[0])
    for got, src in zip(per_seed, rows.source):
        if sorted(got) != prompts:
            raise ValueError(f"{src}: judged other prompts than {rows.source.iloc[0]}; seeds must share the prompts")
    return np.array([[d[p] for p in prompts] for d in per_seed]), prompts


def aggregate_seeds(df: pd.DataFrame, level: float, seed: int = 0) -> pd.DataFrame:
    """One row per (benchmark, algorithm, round) of a several-seed study: `win_rate` the mean per-prompt win
    probability over seeds and prompts, its CI the crossed (seeds × prompts) bootstrap; counts and lengths the
    mean over seeds. The shared SFT row is kept as it is."""
    from .evaluation.stats import crossed_bootstrap_ci

    out = []
    numeric = ["mean_response_tokens", "truncation_rate", "samples_cum", "judge_calls_cum", "train_truncation_rate",
               "train_tokens", "train_examples", "train_steps", "final_loss", "n_prompts"]
    for (bench, algo, rnd), rows in df.groupby(["benchmark", "algorithm", "round"], sort=False):
        if algo == "sft":
            out.append(rows.iloc[0].to_dict() | {"n_seeds": 1})
            continue
        x, _ = _seed_matrix(rows)
        mean, lo, hi = crossed_bootstrap_ci(x, level, seed=seed)
        row = {"benchmark": bench, "algorithm": algo, "round": rnd, "seed": pd.NA, "model_id": f"{algo}-r{rnd}",
               "win_rate": mean, "ci_low": lo, "ci_high": hi, "n_seeds": len(rows),
               # blank unless every seed's LC fit was estimable (a mean of some seeds would pass for all)
               "lc_win_rate": rows.lc_win_rate.astype(float).mean(skipna=False), "baseline": rows.baseline.iloc[0],
               "skipped": "; ".join(f"seed {s}: {r}" for s, r in zip(rows.seed, rows.skipped) if r),
               "source": ";".join(rows.source)}
        row.update({c: pd.to_numeric(rows[c], errors="coerce").mean() for c in numeric})
        out.append(row)
    agg = pd.DataFrame(out)
    agg["seed"] = agg["seed"].astype("Int64")
    return agg[list(df.columns) + ["n_seeds"]]


def pairwise_last_round(df: pd.DataFrame, level: float, seed: int = 0) -> pd.DataFrame:
    """For every two algorithms at the last round: the paired difference of their per-prompt win probabilities
    (same seeds, same prompts), its mean with a crossed bootstrap CI, and in how many seeds the first is ahead."""
    from .evaluation.stats import crossed_bootstrap_ci

    trained = df[df.algorithm != "sft"]
    last = trained[trained["round"] == trained["round"].max()]
    mats = {}
    for algo, rows in last.groupby("algorithm"):
        rows = rows.sort_values("seed")
        mats[algo] = (_seed_matrix(rows), list(rows.seed))
    out = []
    algos = sorted(mats)
    for i, a in enumerate(algos):
        for b in algos[i + 1:]:
            (xa, pa), seeds_a = mats[a]
            (xb, pb), seeds_b = mats[b]
            if pa != pb or seeds_a != seeds_b:
                raise ValueError(f"{a} and {b} were not scored on the same seeds and prompts")
            d = xa - xb
            mean, lo, hi = crossed_bootstrap_ci(d, level, seed=seed)
            out.append({"algorithm_a": a, "algorithm_b": b, "round": int(last["round"].max()), "diff": mean,
                        "ci_low": lo, "ci_high": hi, "a_ahead_in_seeds": f"{int((d.mean(axis=1) > 0).sum())}/{len(d)}",
                        "n_seeds": len(d), "n_prompts": d.shape[1]})
    return pd.DataFrame(out)


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


def _seeds_lines(seeds: list[int], level: float, primary: str, per_seed: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """The seeds paragraph (first two lines, above the tables) and the per-seed and paired sections."""
    trained = per_seed[(per_seed.benchmark == primary) & (per_seed.algorithm != "sft")]
    last = trained[trained["round"] == trained["round"].max()]
    table = last.pivot(index="algorithm", columns="seed", values="win_rate")
    table.columns = [f"seed {c}" for c in table.columns]
    return [f"**Seeds**: {len(seeds)} whole replicates (`study.seeds`: {', '.join(map(str, seeds))}; sampling, "
            "annotation, training and evaluation per seed; SFT model and prompts shared). A trained model's "
            "`win_rate` is the mean over seeds and prompts of its per-prompt win probability (Arena-Hard: both "
            "orders averaged, not the Bradley–Terry score), with a "
            f"{level:.0%} CI from a bootstrap that resamples seeds and prompts independently (crossed units: every "
            "seed answers the same prompts); counts are means over seeds. Per-seed rows: `comparison.csv` "
            "(column `seed`); across-seed rows: `comparison_seeds.csv`.", "",
            f"## Per seed ({primary}, last round)", "", md_table(table.reset_index()), "",
            f"## Paired differences at the last round ({primary})", "",
            "`diff` = win rate of `algorithm_a` − win rate of `algorithm_b`, paired by seed and prompt (same prompts, "
            f"same seed), with a {level:.0%} crossed bootstrap CI over seeds and prompts; `a_ahead_in_seeds`: in how "
            "many seeds a's mean is higher. A CI that excludes 0 separates the two beyond seed and prompt noise. "
            "Also in `pairwise.csv`.", "", md_table(pairs), ""]


def _provenance_line(ev: dict, n_seeds: int = 1) -> str:
    judge = ev["judge"]
    judge_txt = judge.get("name", "?") + (f" (criteria: {', '.join(judge['criteria'])})" if "criteria" in judge else "")
    ci = (f"{ev['ci_method']}" if n_seeds == 1 else
          f"mean per-prompt win probability over {n_seeds} seeds, crossed bootstrap over seeds and prompts (2000 "
          f"resamples; each seed's own file: {ev['ci_method']})")
    return (f"Judge: {judge_txt}. Baseline: `{ev['baseline']}`. Data: `{ev['data']}` ({ev['n_prompts']} prompts). "
            f"CI: {ev['ci_level']:.0%} {ci}." + (f" LC GLM: {ev['lc_glm']}." if ev.get("lc_glm") and n_seeds == 1 else ""))


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


def collect_ifeval(scores: list[dict], level: float, seed: int = 0) -> pd.DataFrame:
    """One row per (algorithm, round): IFEval-style prompt- and instruction-level accuracy with CIs. One seed: the
    score file's numbers; several: the pooled accuracies over seeds and prompts with the crossed bootstrap,
    recomputed from the per-prompt items files.

    With the SFT model among the scores, each trained model's row also carries its difference from SFT
    (`pl_delta`, `il_delta`) with a paired CI: the same prompts answered by both, so the bootstrap resamples
    prompts (and seeds) once for the pair — far narrower than comparing the two accuracies' own CIs, since most
    of a prompt's difficulty is shared."""
    from .evaluation.stats import crossed_bootstrap_ci
    from .io import read_jsonl

    def items_of(ev: dict) -> list[dict]:
        return sorted(read_jsonl(ev["items_file"]), key=lambda it: it["prompt_id"])

    by_model: dict[tuple, list[dict]] = {}
    for s in scores:
        by_model.setdefault((s["algorithm"], s["round"]), []).append(s)
    sft_scores = by_model.get(("sft", 0))
    sft_items = items_of(read_json(sft_scores[0]["path"])) if sft_scores else None
    rows = []
    for (algo, rnd), group in by_model.items():
        evs = [read_json(s["path"]) for s in group]
        paired = sft_items is not None and algo != "sft"
        # the per-prompt items, read once: for the difference from SFT and for pooling several seeds
        items = [items_of(ev) for ev in evs] if paired or len(evs) > 1 else None
        delta = {}
        if paired:
            for its, s in zip(items, group):
                if [it["prompt_id"] for it in its] != [it["prompt_id"] for it in sft_items]:
                    raise ValueError(f"ifeval: {s['path']} and the SFT model's items hold different prompts")
            pl_d = crossed_bootstrap_ci([[float(it["all_met"]) - float(b["all_met"]) for it, b in zip(its, sft_items)]
                                         for its in items], level, seed=seed)
            il_d = crossed_bootstrap_ci([[sum(c["met"] for c in it["constraints"]) - sum(c["met"] for c in b["constraints"])
                                          for it, b in zip(its, sft_items)] for its in items], level, seed=seed,
                                        denominator=[[len(b["constraints"]) for b in sft_items] for _ in items])
            delta = {"pl_delta": pl_d[0], "pl_delta_ci_low": pl_d[1], "pl_delta_ci_high": pl_d[2],
                     "il_delta": il_d[0], "il_delta_ci_low": il_d[1], "il_delta_ci_high": il_d[2]}
        if len(evs) == 1:
            ev = evs[0]
            pl = (ev["prompt_level"], ev["prompt_level_ci_low"], ev["prompt_level_ci_high"])
            il = (ev["instruction_level"], ev["instruction_level_ci_low"], ev["instruction_level_ci_high"])
        else:
            if len({tuple(it["prompt_id"] for it in its) for its in items}) != 1:
                raise ValueError(f"ifeval of {algo} round {rnd}: the seeds' items files hold different prompts")
            pl = crossed_bootstrap_ci([[float(it["all_met"]) for it in its] for its in items], level, seed=seed)
            il = crossed_bootstrap_ci([[sum(c["met"] for c in it["constraints"]) for it in its] for its in items],
                                      level, seed=seed,
                                      denominator=[[len(it["constraints"]) for it in its] for its in items])
        rows.append({"algorithm": algo, "round": rnd, "prompt_level": pl[0], "pl_ci_low": pl[1], "pl_ci_high": pl[2],
                     "instruction_level": il[0], "il_ci_low": il[1], "il_ci_high": il[2],
                     "n_prompts": evs[0]["n_prompts"], "n_instructions": evs[0]["n_instructions"], "n_seeds": len(evs),
                     "truncation_rate": float(np.mean([ev["truncation_rate"] for ev in evs])), **delta,
                     "source": ";".join(str(s["path"]) for s in group)})
    df = pd.DataFrame(rows)
    df["is_sft"] = df.algorithm == "sft"
    return df.sort_values(["is_sft", "algorithm", "round"], ascending=[False, True, True]).drop(
        columns="is_sft").reset_index(drop=True)


class StaleScores(Exception):
    """Held-out score files without the per-criterion votes that the study's other score files carry."""

    def __init__(self, paths: list[str]):
        super().__init__(f"{len(paths)} held-out score file(s) without per-criterion votes, e.g. {paths[0]}")
        self.paths = paths


def collect_criteria(per_seed: pd.DataFrame, level: float, seed: int = 0) -> pd.DataFrame | None:
    """The held-out win rate of every trained (algorithm, round) split by the evaluation panel's criteria: one
    column per criterion with its CI. One seed: the score file's own `by_criterion` (bootstrap over prompts); several:
    the mean of the seeds' per-prompt votes with the crossed (seeds × prompts) bootstrap, as `aggregate_seeds` does
    for the win rate. None when the score files carry no votes (a judge other than a panel of ≥ 2 criteria)."""
    from .evaluation.stats import crossed_bootstrap_ci
    from .io import read_jsonl

    rows = per_seed[(per_seed.benchmark == "heldout") & (per_seed.algorithm != "sft")]
    docs = {src: read_json(src) for src in rows.source}   # each score file read once
    lacking = [src for src in rows.source if "by_criterion" not in docs[src]]
    if rows.empty or len(lacking) == len(rows):
        return None
    if lacking:   # some scored before votes were recorded: a table of the others would pass for all of them
        raise StaleScores(lacking)
    out = []
    for (algo, rnd), g in rows.groupby(["algorithm", "round"], sort=False):
        g = g.sort_values("seed")
        row = {"algorithm": algo, "round": rnd, "n_seeds": len(g)}
        if len(g) == 1:
            for c, v in docs[g.source.iloc[0]]["by_criterion"].items():
                row.update({c: v["win_rate"], f"{c}_ci_low": v["ci_low"], f"{c}_ci_high": v["ci_high"]})
        else:
            votes = [{r["prompt_id"]: r["votes"] for r in read_jsonl(docs[src]["judgments_file"])} for src in g.source]
            prompts = sorted(votes[0])
            if any(sorted(v) != prompts for v in votes):
                raise ValueError(f"{algo} round {rnd}: the seeds' held-out judgments cover different prompts")
            for c in votes[0][prompts[0]]:
                m, lo, hi = crossed_bootstrap_ci(np.array([[v[p][c] for p in prompts] for v in votes]), level, seed=seed)
                row.update({c: m, f"{c}_ci_low": lo, f"{c}_ci_high": hi})
        out.append(row)
    return pd.DataFrame(out)


def _criteria_section(table: pd.DataFrame, criteria: list[str], level: float) -> list[str]:
    shown = table[["algorithm", "round"]].copy()
    for c in criteria:
        shown[c] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                    zip(table[c], table[f"{c}_ci_low"], table[f"{c}_ci_high"])]
    return ["### Held-out win rate by the evaluation judge's criteria", "",
            "The panel's P(model ≻ SFT) is the mean of its criteria's votes (1, ½ or 0), so the win rate splits "
            "exactly into one win rate per criterion: their mean is the table above's. Which of the evaluation "
            f"judge's preferences a model moved, {level:.0%} CI over prompts (crossed with seeds when there are "
            "several); a pair with an empty answer counts the judge's whole verdict for every criterion. Also in "
            "`criteria.csv`.", "", md_table(shown), ""]


def _ifeval_section(table: pd.DataFrame, first: dict) -> list[str]:
    several = (table.n_seeds > 1).any()
    paired = "pl_delta" in table
    cols = ["algorithm", "round", "prompt_level", "pl_ci_low", "pl_ci_high", "instruction_level", "il_ci_low",
            "il_ci_high"] + (["n_seeds"] if several else []) + ["truncation_rate"]
    deltas = ["algorithm", "round", "pl_delta", "pl_delta_ci_low", "pl_delta_ci_high", "il_delta", "il_delta_ci_low",
              "il_delta_ci_high"]
    paired_lines = [
        "Difference from the SFT model (trained minus SFT, same prompts), with a paired CI: "
        + ("the crossed bootstrap over seeds and prompts of the per-prompt differences" if several
           else "the percentile bootstrap over prompts of the per-prompt differences")
        + f" ({first['ci_level']:.0%}, 2000 resamples; instruction level as a ratio). A CI that excludes 0 is a "
        "change in constraint following that this prompt sample resolves.", "",
        md_table(table[table.algorithm != "sft"][deltas]), ""] if paired else []
    if first.get("source", "builtin") == "lm_eval":
        how = (f"Verifiable instructions answered by each model through lm-evaluation-harness's `ifeval` task (greedy, "
               f"the model's chat template, at most {first['max_gen_toks']} tokens) and checked with its checkers "
               f"({first['checkers']}, lm-eval {first['lm_eval_version']}), {first['mode']} mode")
    else:
        how = (f"The held-out prompts' verifiable constraints checked on each model's greedy answers with the "
               f"project's checkers (`{first['checkers']}`), {first['mode']} mode")
    return ["## IFEval-style instruction following (no judge)", "",
            how + ": `prompt_level` = share of prompts "
            f"with every constraint met, `instruction_level` = share of all constraints met. Data: `{first['data']}` "
            f"({first['n_prompts']} prompts, {first['n_instructions']} constraints). CI: {first['ci_level']:.0%} "
            + ("crossed bootstrap over seeds and prompts (2000 resamples)." if several else first["ci_method"] + ".")
            + " No judge is involved: this table is independent of the annotator. Also in `ifeval.csv`.", "",
            md_table(table[cols]), "", *paired_lines]


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


def _game_section(game_dirs: list[str], config: dict, tmp: Path) -> list[str]:
    """The preference-game track: per family, the judge calls and samples to a settled gap (game.csv) and the
    gap curves (figures/game_<family>.png), read from each family's runs.csv / curves.csv."""
    from .games import plot_family, threshold_table

    runs = pd.concat([pd.read_csv(Path(d) / "runs.csv") for d in game_dirs], ignore_index=True)
    table = threshold_table(runs)
    table.to_csv(tmp / "game.csv", index=False, float_format="%.6g")
    g = config["game"]
    per_iter = runs.assign(per_iter=runs.judge_calls_total / g["iterations"]).groupby("algorithm", sort=False).per_iter.mean()
    md = ["## Preference games (exact gaps)", "",
          f"The algorithms' own comparison plans, example building and losses on synthetic games "
          f"(`gamealign.games`): {g['contexts']} contexts × {g['responses']} responses per game, π_ref {g['ref']}, "
          f"{g['iterations']} iterations of K = {g['k']} samples × {g['groups_per_context']} groups per context from "
          f"π_t, one Bernoulli judge label per comparison a plan reads, the loss minimised on a tabular softmax "
          f"policy (L-BFGS, ≤ {g['max_iter']} iterations a round); {g['seeds']} seeded games per family, the same "
          f"games for every algorithm. Judge calls per iteration (mean over games): "
          + ", ".join(f"{a} {v:.0f}" for a, v in per_iter.items()) + ".", "",
          f"`gap`: the exact duality gap of the KL(π_ref)-regularised game at the algorithm's own τ (`tau_own`: "
          f"INPO ρη, WIND β, IPO τ, DPO/SPAC β), and the unregularised exploitability max_y P(y ≻ π) − ½ where "
          f"τ = 0 (SPPO, iterative DPO, BoN: anchored to π_t, not π_ref), mean over contexts. A run has *settled* "
          f"when its gap goes below {g['threshold']:g} and stays below to the last iteration; `judge_calls_median` "
          f"and `samples_median`: median over games of the cumulative count at that iteration, 95% bootstrap CI "
          f"over games, ∞ = not settled (so a median of ∞: most games never settled). Files: `game.csv`, and "
          f"`results/game/<family>/curves.csv` (every iteration) and `runs.csv` (every run).", ""]
    for fam, d in table.groupby("family", sort=False):
        cols = ["algorithm", "tau_own", "settled", "judge_calls_median", "judge_calls_ci_low", "judge_calls_ci_high",
                "samples_median", "samples_ci_low", "samples_ci_high", "final_gap_mean", "final_exploitability_mean"]
        md += [f"### {fam}", "", md_table(d[cols]), ""]
        wind = d[d.algorithm == "wind"]
        others = [(a, d[d.algorithm == a]) for a in ("sppo", "bon_distill") if (d.algorithm == a).any()]
        if len(wind) and others:
            w = wind.iloc[0]
            parts = [f"{a}: {o.iloc[0].judge_calls_median:.0f} [{o.iloc[0].judge_calls_ci_low:.0f}, "
                     f"{o.iloc[0].judge_calls_ci_high:.0f}]" for a, o in others]
            md += [f"WIND settled with {w.judge_calls_median:.0f} judge calls [{w.judge_calls_ci_low:.0f}, "
                   f"{w.judge_calls_ci_high:.0f}] (median, 95% CI); " + "; ".join(parts) + ".", ""]
        curves = pd.concat([pd.read_csv(Path(x) / "curves.csv") for x in game_dirs], ignore_index=True)
        plot_family(curves[curves.family == fam], fam, tmp / "figures" / f"game_{fam}.png")
        md += [f"![gap vs judge calls and samples, {fam}](figures/game_{fam}.png)", ""]
    return md


def _efficiency_section(trained: pd.DataFrame, config: dict, primary: str) -> list[str]:
    """The sample-efficiency table: each trained round's samples, judge calls, steps and tokens, and the win-rate
    gain per 1,000 judge calls."""
    md = ["## Sample efficiency", "",
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
           "![win rate vs judge calls](figures/winrate_vs_judge_calls.png)", ""]
    return md


def write_report(models: list[dict], scores: list[dict], out_dir: str | Path, config: dict,
                 provenance: dict, game_dirs: list[str] | None = None) -> pd.DataFrame:
    kind = {s["benchmark"]: BENCHMARKS[s["benchmark"]].kind for s in scores}
    lb_scores = [s for s in scores if kind[s["benchmark"]] == "tasks"]
    if_scores = [s for s in scores if kind[s["benchmark"]] == "checked"]
    per_seed = collect(models, [s for s in scores if kind[s["benchmark"]] == "judged"])
    lb = collect_leaderboard(lb_scores) if lb_scores else None
    seeds = sorted(int(x) for x in per_seed.seed.dropna().unique())
    level, boot_seed = config["evaluation"].get("ci_level", 0.95), config["study"].get("seed", 0)
    # several seeds: the tables show each model's across-seed mean (CI over seeds and prompts)
    df = aggregate_seeds(per_seed, level, boot_seed) if len(seeds) > 1 else per_seed
    benches = [b for b in config["evaluation"]["benchmarks"] if b in set(df.benchmark)]
    primary = benches[0]
    # the provenance line of each table is read from a trained model's score file (the SFT row is
    # the baseline against itself, with no bootstrap and no LC fit)
    first_file = {b: next((s["path"] for s in scores if s["benchmark"] == b and s["algorithm"] != "sft"),
                          next(s["path"] for s in scores if s["benchmark"] == b)) for b in benches}
    with atomic_path(out_dir, is_dir=True) as tmp:
        per_seed.to_csv(tmp / "comparison.csv", index=False, float_format="%.6f")
        seed_lines = []
        if len(seeds) > 1:
            df.to_csv(tmp / "comparison_seeds.csv", index=False, float_format="%.6f")
            pairs = pairwise_last_round(per_seed[per_seed.benchmark == benches[0]], level, boot_seed)
            pairs.to_csv(tmp / "pairwise.csv", index=False, float_format="%.6f")
            seed_lines = _seeds_lines(seeds, level, benches[0], per_seed, pairs)
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
              f"`{primary}`.", "", *_judges_lines(config), *seed_lines[:2],
              f"## Summary ({primary}, last round of each algorithm, best first)", "",
              md_table(last[["algorithm", "round", "win_rate", "ci_low", "ci_high", "samples_cum", "judge_calls_cum"]]),
              ""]
        for b in benches:
            sub = df[df.benchmark == b]
            cols = ["algorithm", "round", "win_rate", "ci_low", "ci_high"] + (["n_seeds"] if len(seeds) > 1 else [])
            cols += [*BENCHMARKS[b].columns, "mean_response_tokens", "truncation_rate"]
            md += [f"## {BENCHMARKS[b].title}", "", _provenance_line(read_json(first_file[b]), max(len(seeds), 1)), "",
                   md_table(sub[cols]), ""]
            try:
                crit = collect_criteria(per_seed, level, boot_seed) if b == "heldout" else None
            except StaleScores as exc:
                crit = None
                md += ["### Held-out win rate by the evaluation judge's criteria", "",
                       f"Left out: {exc}; they were scored before the votes were recorded. Rerun their "
                       "`eval_winrate` jobs (`snakemake --forcerun eval_winrate`) for this table.", ""]
            if crit is not None:
                crit.to_csv(tmp / "criteria.csv", index=False, float_format="%.6f")
                md += _criteria_section(crit, read_json(first_file[b])["judge"]["criteria"], level)
            if b == "alpaca_eval" and sub["lc_win_rate"].isna().any():
                md += ["A blank `lc_win_rate` means the GLM was not estimable for that model (e.g. its answers "
                       "have the same lengths as the reference's); the reason is in its `alpaca_eval.json`.", ""]
        md += seed_lines[2:]
        if if_scores:
            ifv = collect_ifeval(if_scores, level, boot_seed)
            ifv.to_csv(tmp / "ifeval.csv", index=False, float_format="%.6f")
            trained_if = [s["path"] for s in if_scores if s["algorithm"] != "sft"]
            md += _ifeval_section(ifv, read_json(trained_if[0] if trained_if else if_scores[0]["path"]))
        if lb is not None:
            trained_lb = [s["path"] for s in lb_scores if s["algorithm"] != "sft"]
            md += _leaderboard_section(lb, read_json(trained_lb[0] if trained_lb else lb_scores[0]["path"]))
        md += ["![win rate vs round](figures/winrate_vs_round.png)", "",
               "![win rate vs mean response length](figures/winrate_vs_length.png)", "",
               *_efficiency_section(trained, config, primary)]
        if game_dirs:
            md += _game_section(game_dirs, config, tmp)
        md += ["---",
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
