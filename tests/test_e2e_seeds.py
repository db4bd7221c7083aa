"""The smoke study as two whole replicates (configs/smoke-seeds.yaml over configs/smoke.yaml), through real
`snakemake`: per-seed data and models, the shared SFT model and prompts, the report's across-seed CIs and
paired table, and each algorithm's judge-call counts as its comparison plan says, read from the files."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, clone_project, link_shared_data, run, snakemake_bin

pytestmark = pytest.mark.slow
SEEDS = (0, 1)
ALGOS = ("dpo", "inpo", "spac", "wind")


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def study(tmp_path_factory, env):
    root = tmp_path_factory.mktemp("seeds-parent")
    proj = clone_project(REPO, root / "a", env)
    link_shared_data(root)
    proc = run([snakemake_bin(), "--cores", "2", "--configfile", "configs/smoke.yaml", "configs/smoke-seeds.yaml"],
               proj, env, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proj / "results"


def _counts(R, seed, algo, r):
    return json.loads((R / f"runs/seed{seed}/{algo}/r{r}/model/manifest.json").read_text())["counts"]


def test_replicates_share_sft_and_prompts_and_differ_in_their_samples(study):
    R = study
    assert not (R / "runs/shared").exists() and not (R / "eval/dpo-r1").exists()    # no one-seed layout
    texts = [[r["text"] for r in jsonl(R / f"runs/seed{s}/shared/r1/samples.jsonl")] for s in SEEDS]
    assert len(texts[0]) == len(texts[1]) == 16 and texts[0] != texts[1]
    for s in SEEDS:
        for algo in ALGOS:
            man = json.loads((R / f"runs/seed{s}/{algo}/r2/model/manifest.json").read_text())
            assert man["ref_model"] == "results/sft/model" and man["init_model"].endswith(f"seed{s}/{algo}/r1/model")
            assert man["data_files"]["prompts"] == f"results/prompts/train_r{1 if algo in ('dpo', 'spac') else 2}.jsonl"
    seeds = {s: json.loads((R / f"runs/seed{s}/wind/r2/model/manifest.json").read_text())["seed"] for s in SEEDS}
    assert seeds[0] != seeds[1]
    assert (R / "eval/sft/heldout_winrate.json").exists() and not (R / "eval/seed0/sft").exists()


def test_judge_calls_follow_each_algorithms_plan_in_every_seed(study):
    """From the prefs files and manifests: round 1 judges every pair once per seed (DPO and SPAC need them all),
    WIND is charged ⌊K/2⌋ = 2 a prompt, INPO its tournament's matches (4 or 5), DPO all distinct pairs; round 2
    annotates only the online algorithm's own plan."""
    R = study
    for s in SEEDS:
        r1 = pd.read_parquet(R / f"runs/seed{s}/shared/r1/prefs.parquet")
        texts = {(r["prompt_id"], r["k"]): r["text"] for r in jsonl(R / f"runs/seed{s}/shared/r1/samples.jsonl")}
        distinct = sum(texts[(r.prompt_id, r.i)] != texts[(r.prompt_id, r.j)] for r in r1.itertuples())
        assert len(r1) == 4 * 6
        c = {a: _counts(R, s, a, 1) for a in ALGOS}
        assert c["dpo"]["judge_comparisons"] == c["spac"]["judge_comparisons"] == distinct
        assert c["wind"]["judge_comparisons"] <= 4 * 2 and c["inpo"]["judge_comparisons"] <= 4 * 5
        for algo, per_prompt in [("wind", {2}), ("inpo", {4, 5})]:
            prefs = pd.read_parquet(R / f"runs/seed{s}/{algo}/r2/prefs.parquet")
            assert set(prefs.groupby("prompt_id").size()) <= per_prompt
            texts2 = {(r["prompt_id"], r["k"]): r["text"] for r in jsonl(R / f"runs/seed{s}/{algo}/r2/samples.jsonl")}
            judged = sum(texts2[(r.prompt_id, r.i)] != texts2[(r.prompt_id, r.j)] for r in prefs.itertuples())
            c2 = _counts(R, s, algo, 2)
            assert c2["judge_comparisons"] == judged
            assert c2["judge_calls_cum"] == c[algo]["judge_calls_cum"] + judged
        assert _counts(R, s, "dpo", 2)["judge_calls_cum"] == c["dpo"]["judge_calls_cum"]   # offline: no new data


def _wins(R, model_id):
    return {r["prompt_id"]: r["p_candidate_wins"] for r in jsonl(R / f"eval/{model_id}/heldout_judgments.jsonl")}


def test_report_gives_across_seed_means_with_crossed_cis_and_the_paired_table(study):
    R = study
    per_seed = pd.read_csv(R / "report/comparison.csv")
    agg = pd.read_csv(R / "report/comparison_seeds.csv")
    pairs = pd.read_csv(R / "report/pairwise.csv")
    held = per_seed[(per_seed.benchmark == "heldout") & (per_seed.algorithm != "sft")]
    assert sorted(held.seed.unique()) == list(SEEDS) and len(held) == len(ALGOS) * 2 * len(SEEDS)
    for algo in ALGOS:
        for r in (1, 2):
            grid = np.array([[w for _, w in sorted(_wins(R, f"seed{s}/{algo}-r{r}").items())] for s in SEEDS])
            row = agg[(agg.benchmark == "heldout") & (agg.algorithm == algo) & (agg["round"] == r)].iloc[0]
            assert row.win_rate == pytest.approx(grid.mean(), abs=1e-6) and row.n_seeds == 2
            assert row.ci_low <= row.win_rate <= row.ci_high
            per = held[(held.algorithm == algo) & (held["round"] == r)]
            assert row.win_rate == pytest.approx(per.win_rate.mean(), abs=1e-6)   # equal prompts per seed
    # every two algorithms at the last round, paired by seed and prompt
    assert len(pairs) == len(ALGOS) * (len(ALGOS) - 1) // 2
    for p in pairs.itertuples():
        d = [np.mean([_wins(R, f"seed{s}/{p.algorithm_a}-r2")[q] - _wins(R, f"seed{s}/{p.algorithm_b}-r2")[q]
                      for q in _wins(R, f"seed{s}/{p.algorithm_a}-r2")]) for s in SEEDS]
        assert p.diff == pytest.approx(np.mean(d), abs=1e-6) and p.ci_low <= p.diff <= p.ci_high
        assert p.a_ahead_in_seeds == f"{sum(x > 0 for x in d)}/2"
    md = (R / "report/comparison.md").read_text()
    assert "**Seeds**: 2 whole replicates (`study.seeds`: 0, 1" in md
    assert "## Paired differences at the last round (heldout)" in md and "## Per seed (heldout, last round)" in md
    assert re.search(r"\| algorithm \| round \| win_rate \| ci_low \| ci_high \| n_seeds \|", md)
    assert "Annotator (training labels)" in md and "**Budget rule**" in md
    ifeval = pd.read_csv(R / "report/ifeval.csv")
    trained = ifeval[ifeval.algorithm != "sft"]
    assert len(trained) == len(ALGOS) * 2 and set(trained.n_seeds) == {2}
    for row in trained.itertuples():
        items = [it for s in SEEDS for it in jsonl(R / f"eval/seed{s}/{row.algorithm}-r{row.round}/ifeval_items.jsonl")]
        assert row.prompt_level == pytest.approx(np.mean([it["all_met"] for it in items]), abs=1e-6)
        assert row.pl_ci_low <= row.prompt_level <= row.pl_ci_high
        # the paired difference from SFT pools both seeds: SFT is one model, answered once, per prompt
        sft = {it["prompt_id"]: it["all_met"] for it in jsonl(R / "eval/sft/ifeval_items.jsonl")}
        assert row.pl_delta == pytest.approx(np.mean([it["all_met"] - sft[it["prompt_id"]] for it in items]), abs=1e-6)
        assert row.pl_delta_ci_low <= row.pl_delta <= row.pl_delta_ci_high
    # the evaluation panel's criteria, pooled over seeds: their mean is the across-seed win rate
    crit = pd.read_csv(R / "report/criteria.csv")
    criteria = [c for c in crit.columns if f"{c}_ci_low" in crit.columns]
    assert set(crit.n_seeds) == {2} and len(crit) == len(ALGOS) * 2 and len(criteria) >= 2
    for row in crit.itertuples():
        a = agg[(agg.benchmark == "heldout") & (agg.algorithm == row.algorithm) & (agg["round"] == row.round)].iloc[0]
        assert np.mean([getattr(row, c) for c in criteria]) == pytest.approx(a.win_rate, abs=1e-6)


def test_timings_count_every_replicates_jobs(study, env):
    proc = run(["gamealign", "timings", "--bench-dir", str(study / "benchmarks")], study.parent, env)
    jobs = pd.read_csv(study / "benchmarks/timings.csv")
    per_rule = jobs.groupby("rule").size().to_dict()
    assert per_rule["train"] == 16 and per_rule["sample"] == 8 and per_rule["annotate"] == 6, per_rule
    assert per_rule["prepare_sft"] == per_rule["prompts"] == 1 and "| train | 16 |" in proc.stdout
