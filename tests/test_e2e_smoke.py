"""The whole Snakemake DAG on configs/smoke.yaml, through real `snakemake`, in a temporary directory."""

import json
import re
import subprocess

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import LEADERBOARD_DATA, NO_LEADERBOARD_DATA, snakemake_bin

pytestmark = pytest.mark.slow


def run_snakemake(repo, env, workdir, *extra, config="configs/smoke.yaml"):
    cmd = [snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(workdir), "--configfile",
           str(repo / config), "--cores", "2", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke(smoke_project):
    return smoke_project / "results"


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_contract_file_exists_and_parses(smoke):
    R = smoke
    sft = R / "sft/model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "source.json"):
        assert (sft / name).exists(), name
    src = json.loads((sft / "source.json").read_text())
    assert src["origin"] and len(src["sha256"]) == 64
    assert "im_start" in ((sft / "chat_template.jinja").read_text() if (sft / "chat_template.jinja").exists()
                          else json.loads((sft / "tokenizer_config.json").read_text())["chat_template"])

    for f in ["train_r1", "train_r2", "eval_heldout"]:
        rows = jsonl(R / f"prompts/{f}.jsonl")
        assert rows and all({"id", "messages", "meta"} <= set(r) for r in rows)
        assert all(m["role"] and m["content"] for r in rows for m in r["messages"])

    for d in ["runs/shared/r1", "runs/inpo/r2", "runs/wind/r2", "runs/spac/r2"]:
        samples = jsonl(R / d / "samples.jsonl")
        assert len(samples) == 4 * 4
        for s in samples:
            assert {"prompt_id", "k", "text", "n_tokens", "finish_reason"} <= set(s)
            assert s["finish_reason"] in ("stop", "length")
        if d == "runs/spac/r2":  # self-play samples are never annotated
            assert not (R / d / "prefs.parquet").exists()
            continue
        prefs = pd.read_parquet(R / d / "prefs.parquet")
        assert list(prefs.columns) == ["prompt_id", "i", "j", "p"]
        # the shared round 1 holds every pair (DPO and SPAC read all); round 2 only the algorithm's plan
        assert (len(prefs) == 4 * 6) == (d == "runs/shared/r1") and prefs.p.between(0, 1).all()

    for algo in ["dpo", "inpo", "wind", "spac"]:
        for r in [1, 2]:
            m = R / f"runs/{algo}/r{r}/model"
            assert (m / "model.safetensors").exists()
            metrics = jsonl(m / "train_metrics.jsonl")
            assert metrics and all("loss" in row for row in metrics)
            man = json.loads((m / "manifest.json").read_text())
            assert len(man["config_hash"]) == 64 and "commit" in man["git"]
            assert isinstance(man["seed"], int) and man["timings"]["total_s"] > 0
            assert man["counts"]["train_tokens"] > 0
            for name in ("heldout_winrate", "alpaca_eval", "arena_hard"):
                ev = json.loads((R / f"eval/{algo}-r{r}/{name}.json").read_text())
                assert 0 <= ev["ci_low"] <= ev["ci_high"] <= 1 and 0 <= ev["win_rate"] <= 1, name
                assert ev["judge"]["name"] == "panel" and ev["baseline"] == "sft" and ev["data"], name
                assert Path(ev["judgments_file"]).name in {p.name for p in (R / f"eval/{algo}-r{r}").iterdir()}
            ae = json.loads((R / f"eval/{algo}-r{r}/alpaca_eval.json").read_text())
            # tiny random models often answer with identical (empty) texts: LC is then NaN, with the reason
            assert 0 <= ae["lc_win_rate"] <= 1 or (ae["lc_win_rate"] != ae["lc_win_rate"] and "not estimable" in ae["lc_glm"])
            battles = jsonl(R / f"eval/{algo}-r{r}/arena_hard_judgments.jsonl")
            assert len(battles) == 10 and {"p_model_wins_model_first", "p_baseline_wins_baseline_first"} <= set(battles[0])
            assert (R / f"eval/{algo}-r{r}/heldout_generations.jsonl").exists()

    report = (R / "report/comparison.md").read_text()
    csv = pd.read_csv(R / "report/comparison.csv")
    assert set(csv.algorithm) == {"sft", "dpo", "inpo", "wind", "spac"} and len(csv) == 9 * 3
    assert set(csv.benchmark) == {"heldout", "alpaca_eval", "arena_hard"}
    for section in ("Held-out win rate", "AlpacaEval 2.0", "Arena-Hard-Auto", "Sample efficiency"):
        assert f"## {section}" in report
    # the smoke study leaves evaluation.judge unset: the report names both judges and warns they are one
    assert "**Warning:** the evaluation judge is the annotator" in report and "Annotator (training labels): panel" in report
    assert "train_truncation_rate" in report and "sampling.truncated: keep" in report
    for path in R.glob("eval/*/*.json"):
        ev = json.loads(path.read_text())
        if ev.get("benchmark") in ("heldout_winrate", "alpaca_eval", "arena_hard"):
            assert 0 <= ev["truncation_rate"] <= 1, path
    stats = json.loads((R / "runs/shared/r1/samples.stats.json").read_text())
    assert stats["truncated"] == round(stats["truncation_rate"] * stats["n_sequences"])
    for _, row in csv.iterrows():
        assert Path(row.source).exists() or (smoke.parent / row.source).exists()
        assert re.search(rf"\| {row.algorithm} \| {row['round']} \| {row.win_rate:.3f} \| {row.ci_low:.3f} \| {row.ci_high:.3f}", report)
    assert (R / "report/figures/winrate_vs_round.png").stat().st_size > 1000
    # the panel's win rate split by its criteria: their mean is each model's held-out win rate
    crit = pd.read_csv(R / "report/criteria.csv")
    criteria = json.loads((R / "eval/dpo-r1/heldout_winrate.json").read_text())["judge"]["criteria"]
    assert "### Held-out win rate by the evaluation judge's criteria" in report and len(crit) == 8
    held = csv[csv.benchmark == "heldout"].set_index(["algorithm", "round"]).win_rate
    for _, row in crit.iterrows():
        assert np.mean([row[c] for c in criteria]) == pytest.approx(held[(row.algorithm, row["round"])], abs=1e-6)
        assert all(row[f"{c}_ci_low"] <= row[c] <= row[f"{c}_ci_high"] for c in criteria)


@pytest.mark.skipif(not LEADERBOARD_DATA.is_dir(), reason=NO_LEADERBOARD_DATA)
def test_report_has_the_leaderboard_traced_to_lm_eval_output(smoke):
    R = smoke
    lb = pd.read_csv(R / "report/leaderboard.csv")
    assert [(a, r) for a, r in zip(lb.algorithm, lb["round"])] == [("sft", 0), ("dpo", 2), ("inpo", 2), ("spac", 2),
                                                                    ("wind", 2)]
    report = (R / "report/comparison.md").read_text()
    assert "## Open LLM Leaderboard v1 (lm-evaluation-harness)" in report
    assert "winogrande: 5-shot pool: winogrande/train_l.jsonl" in report and "hellaswag: test = _approx" in report
    tasks = ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", "gsm8k"]
    for _, row in lb.iterrows():
        ev = json.loads(Path(row.source).read_text() if Path(row.source).exists() else (R.parent / row.source).read_text())
        raw = json.loads((R / f"eval/{row.model_id}/open_llm_lmeval.json").read_text())
        items = jsonl(R / f"eval/{row.model_id}/open_llm_samples.jsonl")
        assert sorted(ev["tasks"]) == sorted(tasks) and ev["complete"] and ev["limit"] == 2
        for t in tasks:
            metric = {"gsm8k": "exact_match,strict-match", "arc_challenge": "acc_norm,none",
                      "hellaswag": "acc_norm,none"}.get(t, "acc,none")
            group = f"ga_{t}"
            value = ev["tasks"][t]["value"]
            assert raw[t]["results"][group][metric] == pytest.approx(value)
            assert row[t] == pytest.approx(value, abs=1e-6)  # the csv keeps 6 decimals
            assert raw[t]["n-shot"][group] == {"arc_challenge": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa_mc2": 0,
                                               "winogrande": 5, "gsm8k": 5}[t]
            per_item = [it for it in items if it["task"] == t]
            assert len(per_item) == (4 if t == "mmlu" else 2)   # 2 items x (2 MMLU subjects)
            key = metric.split(",")[0]
            assert sum(it[key] for it in per_item) / len(per_item) == pytest.approx(value)
        assert ev["average"] == pytest.approx(sum(ev["tasks"][t]["value"] for t in tasks) / 6)
        assert row.average == pytest.approx(ev["average"], abs=1e-6)
        assert re.search(rf"\| {row.algorithm} \| {row['round']} \| {row.arc_challenge:.3f}", report)
    assert (R / "report/figures/open_llm_vs_round.png").stat().st_size > 1000


def test_snakemake_html_report_holds_the_figures_and_tables(smoke_project, env):
    proc = subprocess.run([snakemake_bin(), "--cores", "1", "--configfile", "configs/smoke.yaml", "--report",
                           "results/study-report.html"], cwd=smoke_project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (smoke_project / "results/study-report.html").read_text(errors="replace")
    for name in ("winrate_vs_round.png", "winrate_vs_samples.png", "winrate_vs_length.png", "comparison.csv"):
        assert name in html, name


def test_every_job_wrote_its_benchmark_and_timings_summarise_them(smoke, env):
    """Snakemake's benchmark directive on every working rule → `gamealign timings` per-stage table."""
    proc = subprocess.run(["gamealign", "timings", "--bench-dir", str(smoke / "benchmarks")], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = pd.read_csv(smoke / "benchmarks/timings.csv")
    per_rule = jobs.groupby("rule").size().to_dict()
    # 4 algorithms x 2 rounds of training; round-1 samples once (shared) + round 2 for the 2 online
    # algorithms (inpo, wind) and SPAC's self-play samples
    assert per_rule["train"] == 8 and per_rule["sample"] == 4, per_rule
    assert per_rule["prepare_sft"] == per_rule["prompts"] == per_rule["report"] == 1
    assert {"annotate", "eval_generate", "eval_winrate", "eval_score"} <= set(per_rule)
    assert (jobs.s > 0).all() and (jobs.cpu_s >= 0).all()
    md = (smoke / "benchmarks/timings.md").read_text()
    assert "| train | 8 |" in md and md in proc.stdout


def test_round1_data_is_shared_by_every_algorithm(smoke):
    for algo in ["dpo", "inpo", "wind", "spac"]:
        man = json.loads((smoke / f"runs/{algo}/r1/model/manifest.json").read_text())
        assert man["data_files"]["prefs"].endswith("runs/shared/r1/prefs.parquet")
    assert not (smoke / "runs/dpo/r1/samples.jsonl").exists()
    assert not (smoke / "runs/inpo/r1/samples.jsonl").exists()
    # offline DPO reuses the fixed round-1 data in round 2; online INPO samples its own
    assert json.loads((smoke / "runs/dpo/r2/model/manifest.json").read_text())["data_files"]["prefs"].endswith("shared/r1/prefs.parquet")
    assert json.loads((smoke / "runs/inpo/r2/model/manifest.json").read_text())["data_files"]["prefs"].endswith("inpo/r2/prefs.parquet")
    # SPAC: the offline pairs, plus its own unlabeled samples of π_1 in round 2
    spac2 = json.loads((smoke / "runs/spac/r2/model/manifest.json").read_text())
    assert spac2["data_files"]["prefs"].endswith("shared/r1/prefs.parquet")
    assert spac2["data_files"]["selfplay"].endswith("spac/r2/samples.jsonl")
    assert spac2["counts"]["judge_comparisons"] == 0 and spac2["counts"]["samples"] == 16
    # judge accounting: each algorithm is charged the comparisons its examples read (its plan) of the data
    # new to it; the annotation jobs' own counts stay in judge_comparisons_made. Round 1 (4 prompts, K = 4):
    texts: dict = {}
    for row in jsonl(smoke / "runs/shared/r1/samples.jsonl"):
        texts.setdefault(row["prompt_id"], []).append(row["text"])
    distinct = sum(a != b for t in texts.values() for i, a in enumerate(t) for b in t[i + 1:])
    made = json.loads((smoke / "runs/shared/r1/prefs.stats.json").read_text())["judge_comparisons"]
    c1 = {a: json.loads((smoke / f"runs/{a}/r1/model/manifest.json").read_text())["counts"] for a in ("dpo", "inpo", "wind", "spac")}
    assert made == distinct and all(c["judge_comparisons_made"] == made for c in c1.values())
    assert c1["dpo"]["judge_comparisons"] == c1["spac"]["judge_comparisons"] == distinct   # all pairs
    assert c1["wind"]["judge_comparisons"] <= 4 * 2                                          # ⌊K/2⌋ a prompt
    assert c1["inpo"]["judge_comparisons"] <= 4 * (4 + 2 - 1)                                # its tournaments
    inpo2 = json.loads((smoke / "runs/inpo/r2/model/manifest.json").read_text())["counts"]
    assert inpo2["samples_cum"] == 32
    assert inpo2["judge_calls_cum"] == c1["inpo"]["judge_calls_cum"] + inpo2["judge_comparisons"]
    dpo2 = json.loads((smoke / "runs/dpo/r2/model/manifest.json").read_text())["counts"]
    assert dpo2["judge_comparisons"] == 0 and dpo2["judge_calls_cum"] == c1["dpo"]["judge_calls_cum"]  # no new data
    # round 2: each online algorithm's annotation ran its own comparison plan — WIND ⌊K/2⌋ disjoint pairs a
    # prompt, INPO its tournament's matches (K + ⌊K/2⌋ − 2, or one more) — and the trainer read exactly those
    for algo, plan, per_prompt in [("wind", "disjoint", {2}), ("inpo", "tournament", {4, 5})]:
        prefs = pd.read_parquet(smoke / f"runs/{algo}/r2/prefs.parquet")
        stats = json.loads((smoke / f"runs/{algo}/r2/prefs.stats.json").read_text())
        assert [p["plan"] for p in stats["plans"]] == [plan]
        assert set(prefs.groupby("prompt_id").size()) <= per_prompt and len(prefs.prompt_id.unique()) == 4
        texts = {(r["prompt_id"], r["k"]): r["text"] for r in jsonl(smoke / f"runs/{algo}/r2/samples.jsonl")}
        judged = sum(texts[(r.prompt_id, r.i)] != texts[(r.prompt_id, r.j)] for r in prefs.itertuples())
        counts = json.loads((smoke / f"runs/{algo}/r2/model/manifest.json").read_text())["counts"]
        assert counts["judge_comparisons"] == counts["judge_comparisons_made"] == stats["judge_comparisons"] == judged


def test_dry_run_plans_round1_sampling_once(repo, env, tmp_path):
    proc = run_snakemake(repo, env, tmp_path, "-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    # shared r1 + one per online or self-play algorithm per later round (inpo, wind, spac r2)
    assert jobs["sample"] == "4" and jobs["annotate"] == "3"
    assert jobs["train"] == "8" and jobs["eval_generate"] == "9" and jobs["eval_score"] == "18"
    assert jobs["eval_leaderboard"] == "5"  # SFT + each algorithm's last round (open_llm.models: sft_and_last)
    proc = run_snakemake(repo, env, tmp_path, "-n", "-p")
    # annotation runs each data set's comparison plans: round 1 every pair (DPO, SPAC need all), round 2 WIND's
    # disjoint pairs and INPO's tournament, each with the plan seed its trainer gets
    plans = dict(re.findall(r"--samples results/runs/(\w+)/r\d/samples.jsonl .*?--plans '(\[.*?\])'",
                            proc.stdout + proc.stderr))
    assert {k: [p["plan"] for p in json.loads(v)] for k, v in plans.items()} == {
        "shared": ["all"], "wind": ["disjoint"], "inpo": ["tournament"]}
    wind_seed = json.loads(plans["wind"])[0]["seed"]
    assert re.search(rf"train --algorithm wind .*?runs/wind/r2/prefs.parquet .*?--plan-seed {wind_seed} ",
                     proc.stdout + proc.stderr)
    sample_outputs = re.findall(r"output: (results/runs/\S+/samples\.jsonl)", proc.stdout + proc.stderr)
    assert sorted(sample_outputs) == ["results/runs/inpo/r2/samples.jsonl", "results/runs/shared/r1/samples.jsonl",
                                      "results/runs/spac/r2/samples.jsonl", "results/runs/wind/r2/samples.jsonl"]


def test_dry_run_judged_benchmarks_score_the_models_their_config_names(repo, env, tmp_path):
    """evaluation.<bench>.models (alpaca_eval, arena_hard) sizes which models a judged benchmark scores, as
    open_llm.models does the leaderboard's; heldout and ifeval always score every model (the round curves)."""
    import yaml

    cfg = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    cfg["evaluation"]["alpaca_eval"] = {"models": "sft_and_last"}
    cfg["evaluation"]["arena_hard"] = {"models": "sft"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(repo, env, tmp_path, "-n", "-p", config=tmp_path / "cfg.yaml")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    scored = sorted(re.findall(r"--out results/eval/(\S+)/(alpaca_eval|arena_hard)\.json", out))
    last = [f"{a}-r2" for a in ("dpo", "inpo", "spac", "wind")]
    assert scored == sorted([(m, "alpaca_eval") for m in ["sft", *last]] + [("sft", "arena_hard")])
    assert len(set(re.findall(r"results/eval/(\S+)/ifeval\.json", out))) == 9   # SFT + 4 algorithms x 2 rounds


def test_ifeval_scores_every_model_without_a_judge(smoke):
    R = smoke
    table = pd.read_csv(R / "report/ifeval.csv")
    assert len(table) == 1 + 4 * 2 and set(table.n_seeds) == {1}
    for row in table.itertuples():
        ev = json.loads((R.parent / row.source).read_text())
        items = jsonl(R.parent / ev["items_file"])
        assert ev["benchmark"] == "ifeval" and "judge" not in ev and ev["n_prompts"] == len(items) > 0
        assert row.prompt_level == pytest.approx(sum(it["all_met"] for it in items) / len(items), abs=1e-6)
        met = sum(c["met"] for it in items for c in it["constraints"])
        assert row.instruction_level == pytest.approx(met / sum(len(it["constraints"]) for it in items), abs=1e-6)
        assert row.pl_ci_low <= row.prompt_level <= row.pl_ci_high
    # each trained model's paired difference from SFT, recomputed from the two items files prompt by prompt
    sft = {it["prompt_id"]: it for it in jsonl(R.parent / json.loads((R.parent / table[table.algorithm == "sft"]
                                                                        .source.iloc[0]).read_text())["items_file"])}
    for row in table[table.algorithm != "sft"].itertuples():
        items = jsonl(R.parent / json.loads((R.parent / row.source).read_text())["items_file"])
        d = [it["all_met"] - sft[it["prompt_id"]]["all_met"] for it in items]
        assert row.pl_delta == pytest.approx(sum(d) / len(d), abs=1e-6)
        assert row.pl_delta_ci_low <= row.pl_delta <= row.pl_delta_ci_high
        met = sum(c["met"] for it in items for c in it["constraints"])
        sft_met = sum(c["met"] for it in sft.values() for c in it["constraints"])
        asked = sum(len(it["constraints"]) for it in items)
        assert row.il_delta == pytest.approx((met - sft_met) / asked, abs=1e-6)
    assert pd.isna(table[table.algorithm == "sft"].pl_delta).all()
    md = (R / "report/comparison.md").read_text()
    assert "## IFEval-style instruction following (no judge)" in md and "Difference from the SFT model" in md


def test_the_preference_game_track_runs_in_the_dag_and_reaches_the_report(smoke):
    """configs/smoke.yaml turns the game track on (2 families, WIND and DPO at their game-scale defaults): one job
    per family, its curves and runs traced into the report's game table and figures."""
    R = smoke
    runs = pd.concat([pd.read_csv(R / f"game/{fam}/runs.csv") for fam in ("bt", "cyclic")])
    curves = pd.read_csv(R / "game/cyclic/curves.csv")
    assert len(runs) == 2 * 2 * 2 and set(runs.algorithm) == {"wind", "dpo"}
    assert set(curves.iteration) == {0, 1, 2, 3} and (curves.gap >= -1e-12).all()
    assert (runs[runs.algorithm == "wind"].tau_own == 0.1).all()   # game-scale default, not the LLM study's
    table = pd.read_csv(R / "report/game.csv")
    assert len(table) == 4 and set(table.seeds) == {2}
    md = (R / "report/comparison.md").read_text()
    assert "## Preference games (exact gaps)" in md and "### cyclic" in md
    assert (R / "report/figures/game_cyclic.png").stat().st_size > 0
    assert (R / "benchmarks/game/bt.tsv").exists()


def _dry_run_with(proj, env, tmp_path, name, edit):
    """`snakemake -n` of the finished smoke study under a config edited by `edit`: the rules it would run."""
    import yaml
    cfg = yaml.safe_load((proj / "configs/smoke.yaml").read_text())
    edit(cfg)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))   # the algorithms keep their order (the report's rows)
    proc = subprocess.run([snakemake_bin(), "-n", "--cores", "2", "--configfile", str(path)], cwd=proj, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    return set(re.findall(r"^rule (\w+):", out, re.M)), out


def test_runtime_knobs_rerun_nothing_and_a_result_setting_reruns_its_stage(smoke_project, env, tmp_path):
    """Params hold exactly what determines a rule's outputs: the HTTP judge's timeout and the checkpoint cadence
    change no result (nothing to rerun); the sampling temperature changes the samples and everything downstream."""
    def knobs(cfg):
        cfg.setdefault("judge", {}).setdefault("http", {})["timeout_s"] = 7
        cfg["train"]["checkpoint_every"] = 3
        cfg["sampling"]["gpu_memory_utilization"] = 0.5
    rules, out = _dry_run_with(smoke_project, env, tmp_path, "knobs", knobs)
    assert rules == set() and "Nothing to be done" in out, out[-3000:]

    def temperature(cfg):
        cfg["sampling"]["temperature"] = 0.7
    rules, out = _dry_run_with(smoke_project, env, tmp_path, "temperature", temperature)
    assert {"sample", "annotate", "train", "eval_generate", "report"} <= rules, out[-3000:]
    assert not {"prepare_sft", "prompts", "game"} & rules


def test_trust_remote_code_reaches_every_job_that_loads_a_checkpoint(repo, env, tmp_path):
    import yaml
    cfg = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    cfg["model"]["trust_remote_code"] = True
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = run_snakemake(repo, env, tmp_path, "-n", "-p", config=str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for cmd in ("gamealign sample --model", "gamealign sample --greedy", "train --algorithm"):
        lines = [line for line in out.splitlines() if cmd in line]
        assert lines and all("--trust-remote-code" in line for line in lines), cmd


def test_training_metrics_reach_dvclive_and_dvc_plots_renders_them(smoke_project, smoke, env):
    """configs/smoke.yaml sets train.report_to: dvclive: one DVCLive run per algorithm x round under
    results/tracking/ (not git-ignored, as DVCLive intends), whose per-step metrics `dvc plots show` renders
    from the project root."""
    import yaml

    for run in ("dpo-r1", "inpo-r2", "wind-r2", "spac-r1"):
        d = smoke / "tracking" / run
        loss = (d / "live/plots/metrics/loss.tsv").read_text().splitlines()
        man = json.loads((smoke / f"runs/{run.replace('-r', '/r')}/model/manifest.json").read_text())
        assert loss[0].split("\t") == ["step", "loss"] and len(loss) - 1 == man["counts"]["train_steps"]
        assert (d / "live/params.yaml").exists()
        dvcyaml = yaml.safe_load((d / "dvc.yaml").read_text())
        assert dvcyaml["params"] == ["live/params.yaml"] and dvcyaml["metrics"] == ["live/metrics.json"]
        assert dvcyaml["plots"] == [{"live/plots/metrics": {"x": "step"}}]
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/tracking/dpo-r1/dvc.yaml"], cwd=smoke_project,
                             env=env)
    assert ignored.returncode == 1, "results/tracking is git-ignored"
    proc = subprocess.run(["dvc", "plots", "show", "--json"], cwd=smoke_project, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = json.loads(proc.stdout)["data"]
    for run in ("dpo-r1", "dpo-r2", "inpo-r1", "inpo-r2", "wind-r1", "wind-r2", "spac-r1", "spac-r2"):
        assert f"results/tracking/{run}/live/plots/metrics/loss.tsv" in shown, sorted(shown)


def test_an_offline_dataset_feeds_dpo_and_spac_in_the_dag(repo, env, tmp_path):
    """offline_data.source: file — one offline_data job writes the dataset in the study's formats; DPO and SPAC
    train on it (their prompts, samples and prefs under results/offline), SPAC samples its self-play answers on
    the dataset's prompts from round 1, and the shared round-1 data is judged only for the online algorithms."""
    import yaml
    cfg = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    cfg["offline_data"] = {"source": "file", "path": str(repo / "tests/data/ultrafeedback_binarized_tiny.jsonl")}
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = run_snakemake(repo, env, tmp_path, "-n", "-p", config=str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "gamealign offline-data" in out
    for algo in ("dpo", "spac"):
        line = next(x for x in out.splitlines() if f"train --algorithm {algo} " in x and f"runs/{algo}/r1/model" in x)
        assert "--prompts results/offline/prompts.jsonl" in line and "--prefs results/offline/prefs.parquet" in line
    assert "--samples results/runs/wind/r1/" not in out   # online round 1 still shares runs/shared/r1
    assert re.search(r"sample --model results/sft/model --prompts results/offline/prompts.jsonl "
                     r"--out results/runs/spac/r1/samples.jsonl", out)
    plans = re.search(r"--samples results/runs/shared/r1/samples.jsonl .*?--plans '(\[.*?\])'", out).group(1)
    assert [p["plan"] for p in json.loads(plans)] == ["disjoint", "tournament"]   # WIND's and INPO's only
