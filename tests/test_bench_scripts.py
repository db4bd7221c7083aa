"""The bench scripts that choose a study's settings run end to end on the tiny model (their numbers mean nothing)."""

import json
import sys

import pytest
import yaml
from conftest import REPO, run


def read_ids(path, key="id"):
    return {json.loads(line)[key] for line in path.read_text().splitlines() if line.strip()}


def test_lr_sweep_trains_round_one_and_scores_it_on_the_validation_prompts_only(tmp_path, tiny_sft, env):
    """bench/lr_sweep.py chose the default's learning rate: its win rates must come from validation prompts,
    disjoint from the held-out ones the report scores, and from a model that trained."""
    cfg = yaml.safe_load((REPO / "configs/smoke.yaml").read_text())
    cfg["prompts"]["n_validation"] = 4
    cfg["evaluation"]["benchmarks"] = ["heldout", "ifeval"]
    cfg["game"] = {"enabled": False}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run([sys.executable, str(REPO / "bench/lr_sweep.py"), "--config", "cfg.yaml", "--sft", str(tiny_sft),
         "--algos", "dpo", "--lrs", "1e-3", "--work", "w", "--out", "sweep.json"], cwd=tmp_path, env=env)

    res = json.loads((tmp_path / "sweep.json").read_text())
    assert res["validation_prompts"] == 4 and 0 <= res["sft_ifeval_prompt_level"] <= 1
    [r] = res["runs"]
    assert (r["algorithm"], r["lr"]) == ("dpo", 1e-3) and r["train_steps"] > 0
    assert r["ci"][0] <= r["win_rate"] <= r["ci"][1]
    w = tmp_path / "w"
    val, heldout = read_ids(w / "prompts/validation.jsonl"), read_ids(w / "prompts/eval_heldout.jsonl")
    assert len(val) == 4 and not val & heldout
    run_dir = w / "dpo_lr0.001"
    assert read_ids(run_dir / "validation.jsonl", "prompt_id") == val == read_ids(run_dir / "judgments.jsonl", "prompt_id")
    # the study's train section minus its runtime knobs: the sweep's runs are not tracked runs
    assert not (tmp_path / "results").exists() and (run_dir / "model/manifest.json").exists()


def test_round_sweep_runs_the_study_dag_and_scores_every_round_on_validation_prompts(tmp_path, env):
    """bench/round_sweep.py: the study's own rules up to the last round's models (no evaluation stage, no game
    track), every round scored on the validation prompts only."""
    cfg = yaml.safe_load((REPO / "configs/smoke.yaml").read_text())
    cfg["prompts"]["n_validation"] = 4
    cfg["evaluation"]["benchmarks"] = ["heldout"]
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run([sys.executable, str(REPO / "bench/round_sweep.py"), "--config", "cfg.yaml", "--algos", "dpo", "wind",
         "--lrs", "2e-3", "--work", "w", "--out", "sweep.json", "--cores", "1"], cwd=tmp_path, env=env)

    res = json.loads((tmp_path / "sweep.json").read_text())
    assert [(r["algorithm"], r["round"]) for r in res["runs"]] == [("dpo", 1), ("dpo", 2), ("wind", 1), ("wind", 2)]
    assert all(r["lr"] == 2e-3 and r["ci"][0] <= r["win_rate"] <= r["ci"][1] and r["train_examples"] > 0
               for r in res["runs"])
    R = tmp_path / "w/lr0.002/results"
    val, heldout = read_ids(R / "prompts/validation.jsonl"), read_ids(R / "prompts/eval_heldout.jsonl")
    assert len(val) == 4 and not val & heldout
    for algo, r in [("dpo", 2), ("wind", 2)]:
        assert read_ids(tmp_path / f"w/lr0.002/scores/{algo}_r{r}/judgments.jsonl", "prompt_id") == val
    # the DAG ran only what the round models need, with the swept lr and without the study's other algorithms
    assert not (R / "eval").exists() and not (R / "game").exists()
    assert {p.name for p in (R / "runs").iterdir()} == {"dpo", "wind", "shared"}   # shared: round 1's samples
    train = json.loads((R / "runs/wind/r2/model/manifest.json").read_text())["params"]["train"]
    assert train["lr"] == 2e-3 != cfg["train"]["lr"] and train["report_to"] == "none"

    # --baseline: each row's paired difference against another sweep's same model; against itself it is exactly 0
    run([sys.executable, str(REPO / "bench/round_sweep.py"), "--config", "cfg.yaml", "--algos", "wind", "--lrs", "2e-3",
         "--work", "w", "--out", "paired.json", "--cores", "1", "--baseline", "w"], cwd=tmp_path, env=env)
    paired = [r["paired_vs_baseline"] for r in json.loads((tmp_path / "paired.json").read_text())["runs"]]
    assert paired == [{"mean": 0.0, "ci": [0.0, 0.0], "prompts": 4}] * 2


def test_round_sweep_paired_difference_by_hand(tmp_path):
    """paired_difference: the mean over shared prompts of the variant's P(win) minus the baseline's, with a bootstrap
    CI over prompts; prompts that differ between the two files are an error naming both."""
    import importlib.util

    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("round_sweep", REPO / "bench/round_sweep.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(REPO / "bench"))

    def judgments(name, ps):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "p_candidate_wins": p}) + "\n" for i, p in enumerate(ps)))
        return path

    base = judgments("base.jsonl", [0.5, 0.5, 0.5, 0.5])
    diff = mod.paired_difference(judgments("v.jsonl", [1.0, 1.0, 0.5, 0.5]), base)
    assert diff["mean"] == 0.25 and diff["prompts"] == 4 and 0.0 <= diff["ci"][0] < 0.25 < diff["ci"][1] <= 0.5
    # the order of the rows does not matter, only the prompt ids
    rows = [{"prompt_id": f"p{i}", "p_candidate_wins": p} for i, p in enumerate([0.0, 0.5, 0.5, 0.5])][::-1]
    (tmp_path / "rev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert mod.paired_difference(tmp_path / "rev.jsonl", base)["mean"] == -0.125
    with pytest.raises(SystemExit, match="judge different prompts"):
        mod.paired_difference(judgments("short.jsonl", [1.0, 1.0, 0.5]), base)


def test_gpu_study_runs_sweep_then_study_in_the_background_and_polls_its_results(tmp_path, env):
    """bench/gpu_study.sh (the GPU study's one-hold runner), on CPU with GPU_KIT=0: `start` returns at once with the
    study running on; `poll` waits for it and packs what exists. The lr is the sweep's best mean validation win rate
    and is what the study then trained with; the manifests name the commit given (the runner's copy has no .git)."""
    import subprocess
    import tarfile

    cfg = yaml.safe_load((REPO / "configs/smoke.yaml").read_text())
    cfg["study"]["rounds"] = 1
    cfg["prompts"]["n_validation"] = 4
    cfg["algorithms"] = {k: v for k, v in cfg["algorithms"].items() if k in ("dpo", "inpo")}
    cfg["evaluation"]["benchmarks"] = ["heldout", "ifeval"]
    cfg["train"].pop("report_to")
    cfg["game"] = {"enabled": False}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    work, out = tmp_path / "work", tmp_path / "out"
    e = {**env, "GPU_KIT": "0", "PYTHON": sys.executable, "CONFIG": str(tmp_path / "cfg.yaml"), "WORK": str(work),
         "OUT": str(out), "CORES": "2", "SWEEP_ALGOS": "inpo", "SWEEP_LRS": "1e-3 3e-2",
         "GAMEALIGN_GIT_COMMIT": "0123abc", "SAMPLER_CHECK": "force", "SAMPLER_MIN_RATIO": "0", "SAMPLER_THREADS": "1"}
    script = str(REPO / "bench/gpu_study.sh")
    assert run(["bash", script, "poll"], cwd=REPO, env=e, check=False).returncode == 2   # nothing started yet

    started = run(["bash", script, "start"], cwd=REPO, env=e, timeout=60)
    assert "started" in started.stdout and not (work / "lr_choice.json").exists()
    try:
        polled = run(["bash", script, "poll"], cwd=REPO, env={**e, "WAIT": "900"}, timeout=960)
    finally:   # a failed wait must not leave the study running after the test
        subprocess.run(["bash", script, "stop"], cwd=REPO, env=e, capture_output=True, check=False)
    assert "gpu_study: done" in polled.stdout, polled.stdout + (work / "study.log").read_text()[-3000:]
    assert (work / "state").read_text().splitlines()[-1].startswith("done rc=0")
    assert "prioritized: 3 primary-benchmark scores" in (work / "study.log").read_text()   # SFT, DPO r1, INPO r1

    sweep = json.loads((work / "lr_sweep.json").read_text())["runs"]
    assert {r["lr"] for r in sweep} == {1e-3, 3e-2}
    choice = json.loads((out / "lr_choice.json").read_text())
    assert choice["chosen"] == max(sweep, key=lambda r: (r["win_rate"], -r["lr"]))["lr"]
    manifest = json.loads((work / "results/runs/inpo/r1/model/manifest.json").read_text())
    assert manifest["params"]["train"]["lr"] == choice["chosen"] and manifest["git"]["commit"] == "0123abc"
    with tarfile.open(out / "study.tgz") as tgz:
        names = set(tgz.getnames())
    assert {"results/report/comparison.md", "results/benchmarks/timings.md", "lr_sweep.json", "config.yaml",
            "results/eval/inpo-r1/heldout_winrate.json", "results/runs/inpo/r1/model/manifest.json"} <= names
    assert (out / "comparison.md").exists() and "sweep" in (out / "study_state.txt").read_text()
    # the sampler check measured both HF samplers (on CPU only because forced) and, at a least ratio of 0, chose
    # hf-static, which every sampling job of the study then used
    sampler = json.loads((out / "sampler_choice.json").read_text())
    assert set(sampler["tokens_per_s"]) == {"hf", "hf-static"} and sampler["chosen"] == "hf-static"
    assert json.loads((work / "results/runs/shared/r1/samples.stats.json").read_text())["backend"] == "hf-static"
    # then the liger equivalence test, which has no GPU here: it ran, and skipped
    assert "1 skipped" in (work / "liger_test.txt").read_text() and "liger_test.txt" in names

    # bench/partial_report.py on what came back, as for a study the hold cut short: DPO's model and score taken
    # away, the report has SFT and INPO, INPO's numbers as the full report's (read from the per-prompt files packed)
    back = tmp_path / "back"
    with tarfile.open(out / "study.tgz") as tgz:
        tgz.extractall(back, filter="data")
    assert {"results/eval/inpo-r1/heldout_judgments.jsonl", "results/eval/inpo-r1/ifeval_items.jsonl"} <= names
    (back / "results/runs/dpo/r1/model/manifest.json").unlink()
    (back / "results/eval/dpo-r1/heldout_winrate.json").unlink()
    run([sys.executable, str(REPO / "bench/partial_report.py"), "--results", "results", "--config", "config.yaml",
         "--out-dir", "partial"], cwd=back, env=e)
    import pandas as pd
    full = pd.read_csv(back / "results/report/comparison.csv")
    part = pd.read_csv(back / "partial/comparison.csv")
    assert sorted(set(part.algorithm)) == ["inpo", "sft"]
    cols = ["algorithm", "round", "benchmark", "win_rate", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(part[part.algorithm == "inpo"][cols].reset_index(drop=True),
                                  full[full.algorithm == "inpo"][cols].reset_index(drop=True))
    summary = json.loads((back / "partial/partial.json").read_text())
    assert summary["models_missing"] == ["dpo-r1"] and summary["models_present"] == ["sft", "inpo-r1"]
    md = (back / "partial/comparison.md").read_text()
    assert "0123abc" in md   # the commit the study ran, from its manifests
    assert "**Partial report**" in md.splitlines()[2] and "Not reached: dpo-r1." in md   # said at the top


def test_partial_report_counts_as_missing_only_scores_the_study_would_have_made(tmp_path):
    """partial_index: a benchmark with models sft_and_last is owed only the SFT model's and the last round's scores,
    so an earlier round without one is not missing; a reached last round without one is."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("partial_report", REPO / "bench/partial_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = tmp_path / "results"
    for m in ("dpo", "wind"):
        for r in (1, 2):
            (res / f"runs/{m}/r{r}/model").mkdir(parents=True)
            (res / f"runs/{m}/r{r}/model/manifest.json").write_text("{}")
    for model_id, f in [("sft", "heldout_winrate.json"), ("dpo-r1", "heldout_winrate.json"),
                        ("dpo-r2", "heldout_winrate.json"), ("wind-r1", "heldout_winrate.json"),
                        ("sft", "open_llm.json"), ("dpo-r2", "open_llm.json")]:
        (res / "eval" / model_id).mkdir(parents=True, exist_ok=True)
        (res / "eval" / model_id / f).write_text("{}")
    cfg = {"study": {"seed": 0, "rounds": 2, "results_dir": "elsewhere"},
           "algorithms": {"dpo": {}, "wind": {}, "spac": {}}, "game": {"enabled": False, "families": []},
           "evaluation": {"benchmarks": ["heldout", "open_llm"], "open_llm": {"models": "sft_and_last"}}}
    index, summary = mod.partial_index(res, cfg)
    assert summary["models_missing"] == ["spac-r1", "spac-r2"]
    assert summary["scores_missing_of_trained_models"] == ["wind-r2/heldout", "wind-r2/open_llm"]
    assert [(s["algorithm"], s["round"], s["benchmark"]) for s in index["scores"]] == [
        ("sft", 0, "heldout"), ("dpo", 1, "heldout"), ("dpo", 2, "heldout"), ("wind", 1, "heldout"),
        ("sft", 0, "open_llm"), ("dpo", 2, "open_llm")]
    assert all(s["path"].startswith(str(res)) for s in index["scores"])   # read under --results, not results_dir


def test_partial_report_reads_a_study_of_several_seeds(tmp_path):
    """partial_index on a two-seed layout (runs/seed<N>/, eval/seed<N>/): each seed's models and scores apart."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("partial_report", REPO / "bench/partial_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = tmp_path / "results"
    for seed in (1, 2):
        (res / f"runs/seed{seed}/dpo/r1/model").mkdir(parents=True)
        (res / f"runs/seed{seed}/dpo/r1/model/manifest.json").write_text("{}")
    for model_id in ("sft", "seed1/dpo-r1"):
        (res / "eval" / model_id).mkdir(parents=True, exist_ok=True)
        (res / "eval" / model_id / "heldout_winrate.json").write_text("{}")
    cfg = {"study": {"seed": 0, "seeds": [1, 2], "rounds": 1, "results_dir": "results"},
           "algorithms": {"dpo": {}, "wind": {}}, "game": {"enabled": False, "families": []},
           "evaluation": {"benchmarks": ["heldout"]}}
    index, summary = mod.partial_index(res, cfg)
    assert summary["models_present"] == ["sft", "seed1/dpo-r1", "seed2/dpo-r1"]
    assert summary["models_missing"] == ["seed1/wind-r1", "seed2/wind-r1"]
    assert summary["scores_missing_of_trained_models"] == ["seed2/dpo-r1/heldout"]
    assert [(s["seed"], s["algorithm"]) for s in index["scores"]] == [(None, "sft"), (1, "dpo")]


def test_constraint_signal_counts_pass_rates_and_the_annotators_best_of_k_by_hand(tmp_path, env):
    """bench/constraint_signal.py's numbers on two hand-made prompts: pass rates, contrast, and the best answer's
    preference over the others under the annotator and the evaluation judge."""
    prompts = [{"id": "a", "messages": [{"role": "user", "content": "Tell me about tea. Include the word 'simple'."}],
                "meta": {"topic": "tea", "constraints": [{"type": "include", "word": "simple"}]}},
               {"id": "b", "messages": [{"role": "user", "content": "Tell me about tea. Write in lowercase."}],
                "meta": {"topic": "tea", "constraints": [{"type": "lowercase"}]}}]
    # prompt a: one answer meets the constraint, the other does not (both finished, no repetition, on topic);
    # prompt b: neither meets it and they are otherwise alike, so every criterion ties
    samples = [{"prompt_id": "a", "k": 0, "text": "Tea is simple to brew."},
               {"prompt_id": "a", "k": 1, "text": "Tea is easy to brew."},
               {"prompt_id": "b", "k": 0, "text": "Tea is nice."},
               {"prompt_id": "b", "k": 1, "text": "Tea is fine."}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    cfg = {"judge": {"name": "panel", "criteria": ["constraints", "complete"]},
           "evaluation": {"judge": {"name": "panel", "criteria": ["constraints", "relevance"]}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run([sys.executable, str(REPO / "bench/constraint_signal.py"), "--config", "cfg.yaml", "--samples", "s.jsonl",
         "--prompt-file", "p.jsonl", "--out", "out.json"], cwd=tmp_path, env=env)
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["prompts"] == 2 and res["answers_per_prompt"] == [2]
    assert res["constraints"]["include"] == {"answers": 2, "met": 0.5, "prompts": 1, "prompts_with_contrast": 1.0}
    assert res["constraints"]["lowercase"] == {"answers": 2, "met": 0.0, "prompts": 1, "prompts_with_contrast": 0.0}
    best = res["best_of_k_vs_others"]
    # annotator (2 criteria): a's best wins constraints, ties complete -> 0.75; b ties both -> 0.5
    assert best["annotator"]["mean"] == 0.625
    # evaluation criterion constraints alone: 1.0 and 0.5; relevance: both answers use the topic word -> 0.5, 0.5
    assert best["evaluation criterion constraints"]["mean"] == 0.75
    assert best["evaluation criterion relevance"]["mean"] == 0.5
    assert best["evaluation judge"]["mean"] == 0.625
    assert best["evaluation judge"]["ci_low"] <= 0.625 <= best["evaluation judge"]["ci_high"]


def test_pair_contrast_reads_each_algorithms_pairs_by_hand(tmp_path, env):
    """bench/pair_contrast.py on two prompts of K = 2: prompt a's answers differ (the annotator prefers the short,
    finished one 2:1), prompt b's tie. DPO keeps only a's pair, its label the annotator's choice; WIND keeps both,
    and its sampled label agrees with the annotator with probability P² + (1 − P)² = 5/9 on a, ½ on b."""
    import pandas as pd

    rd = tmp_path / "r1"
    rd.mkdir()
    samples = [{"prompt_id": "a", "k": 0, "text": "Short and done.", "n_tokens": 5, "finish_reason": "stop"},
               {"prompt_id": "a", "k": 1, "text": "A long one that was cut", "n_tokens": 9, "finish_reason": "length"},
               {"prompt_id": "b", "k": 0, "text": "One.", "n_tokens": 2, "finish_reason": "stop"},
               {"prompt_id": "b", "k": 1, "text": "Two.", "n_tokens": 2, "finish_reason": "stop"}]
    (rd / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    pd.DataFrame({"prompt_id": ["a", "b"], "i": [0, 0], "j": [1, 1], "p": [2 / 3, 0.5]}).to_parquet(rd / "prefs.parquet")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"algorithms": {"dpo": {}, "wind": {}}}))
    run([sys.executable, str(REPO / "bench/pair_contrast.py"), "--config", "cfg.yaml", "--round-dir", "r1",
         "--algos", "dpo", "wind", "--variant", "wind.label=verdict", "--draws", "3", "--out", "out.json"],
        cwd=tmp_path, env=env)
    res = json.loads((tmp_path / "out.json").read_text())["algorithms"]
    approx = lambda x: pytest.approx(x, abs=1e-3)
    assert res["dpo"] == {"examples_per_prompt": 0.5, "annotator_margin": approx(1 / 6), "label_agreement": approx(2 / 3),
                          "tied": 0.0, "winner_minus_loser_tokens": -4.0, "winner_cut": 0.0, "loser_cut": 1.0}
    assert res["wind"]["examples_per_prompt"] == 1.0 and res["wind"]["tied"] == 0.5
    assert res["wind"]["annotator_margin"] == res["wind (label=verdict)"]["annotator_margin"] == approx(1 / 12)
    assert res["wind"]["label_agreement"] == approx((5 / 9 + 1 / 2) / 2)
    assert res["wind"]["winner_minus_loser_tokens"] == approx((-4 / 3 + 0) / 2)
    assert res["wind"]["winner_cut"] == approx((1 / 3 + 0) / 2) and res["wind"]["loser_cut"] == approx((2 / 3 + 0) / 2)
    # the verdict reads a's pair as the annotator's sure choice and b's tie as ½
    assert res["wind (label=verdict)"]["label_agreement"] == approx((2 / 3 + 1 / 2) / 2)
    assert res["wind (label=verdict)"]["winner_minus_loser_tokens"] == approx(-2.0)


def test_unseen_batches_splits_a_rounds_steps_into_first_epoch_and_later_ones_by_hand(tmp_path, env):
    """bench/unseen_batches.py on hand-written logs: 5 steps, 3 in the first epoch. Step 0 is the no-move
    reference; steps 1-2 are the unseen batches (loss 1.0 and 3.0, margins -0.5 and +0.25), steps 3-4 the seen ones."""
    m = tmp_path / "runs/wind/r1/model"
    m.mkdir(parents=True)
    rows = [(0, 0, 0.25, 0.0), (1, 0, 1.0, -0.5), (2, 0, 3.0, 0.25), (3, 1, 0.5, 1.0), (4, 1, 0.1, 2.0)]
    # written out of order: the script sorts by step
    (m / "train_metrics.jsonl").write_text("".join(json.dumps({"step": s, "epoch": e, "loss": lo, "margin": mg}) + "\n"
                                                   for s, e, lo, mg in reversed(rows)))
    run([sys.executable, str(REPO / "bench/unseen_batches.py"), "--runs", "runs", "--algos", "wind", "--rounds", "1",
         "--out", "out.json"], cwd=tmp_path, env=env)
    (row,) = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert row == {"algorithm": "wind", "round": 1, "steps": 5, "step0_loss": 0.25, "step0_margin": 0.0,
                   "unseen_steps": 2, "unseen_loss": 2.0, "unseen_margin": -0.125, "unseen_margin_positive": 1,
                   "seen_steps": 2, "seen_loss": 0.3, "seen_margin": 1.5}
    bad = run([sys.executable, str(REPO / "bench/unseen_batches.py"), "--runs", "runs", "--algos", "inpo"],
              cwd=tmp_path, env=env, check=False)
    assert bad.returncode != 0 and "inpo/r1/model/train_metrics.jsonl: not found" in bad.stderr


def test_train_step_bench_runs_the_shared_prefix_layout_and_counts_the_same_pair_tokens(tmp_path, tiny_sft, env):
    """bench/train_step.py ours-prefix (train.shared_prefix's layout) against ours: the same pair tokens counted
    for tokens/s, fewer tokens through the model (each prompt once a pair); both take real steps."""
    run([sys.executable, str(REPO / "bench/train_step.py"), "--model", str(tiny_sft), "--pairs", "4", "--seq-len", "32",
         "--prompt-len", "16", "--steps", "1", "--warmup", "1", "--impl", "ours", "ours-prefix", "ours-prefix-mb2",
         "--no-isolate", "--out", "r.json"], cwd=tmp_path, env=env)
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["ours"]["tokens_per_step"] == res["ours-prefix"]["tokens_per_step"] == 4 * 2 * 32
    assert res["ours"]["model_tokens_per_step"] == 4 * 2 * 32
    # each pair once as [16-token prompt | 16 chosen | 16 rejected], in one pass or two of 2 pairs
    assert res["ours-prefix"]["model_tokens_per_step"] == res["ours-prefix-mb2"]["model_tokens_per_step"] == 4 * 48
    assert all(r["tokens_per_s"] > 0 for r in res.values())


def test_ifeval_checkers_compares_ours_with_googles_verdicts_on_the_same_texts_by_hand(tmp_path, env):
    """bench/ifeval_checkers.py: per constraint type, agreement of our checker with the items' (Google's) verdicts on
    the items' own texts, and both prompt-level accuracies. Two prompts: "Two cats sleep." with include 'cat' (ours
    no, Google yes: a substring) and max_words 5 (both yes); "- a\n- b" with bullets 2 (both yes)."""
    from gamealign.io import write_jsonl

    prompts = [{"id": "a", "messages": [{"role": "user", "content": "x"}],
                "meta": {"constraints": [{"type": "include", "word": "cat"}, {"type": "max_words", "n": 5}]}},
               {"id": "b", "messages": [{"role": "user", "content": "y"}], "meta": {"constraints": [{"type": "bullets", "n": 2}]}}]
    items = [{"prompt_id": "a", "text": "Two cats sleep.", "all_met": True,
              "constraints": [{"instruction_id": "keywords:existence", "met": True},
                              {"instruction_id": "length_constraints:number_words", "met": True}]},
             {"prompt_id": "b", "text": "- a\n- b", "all_met": True,
              "constraints": [{"instruction_id": "detectable_format:number_bullet_lists", "met": True}]}]
    write_jsonl(tmp_path / "p.jsonl", prompts)
    write_jsonl(tmp_path / "i.jsonl", items)
    run([sys.executable, str(REPO / "bench/ifeval_checkers.py"), "--prompts", "p.jsonl", "--items", "i.jsonl",
         "--out", "o.json"], tmp_path, env)
    res = json.loads((tmp_path / "o.json").read_text())
    assert res["instructions"] == 3 and res["instruction_agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert res["prompt_level_ours"] == 0.5 and res["prompt_level_google"] == 1.0 and res["prompt_agreement"] == 0.5
    assert res["per_type"]["include"]["agreement"] == 0.0 and res["per_type"]["include"]["examples"][0]["google"] is True
    assert res["per_type"]["bullets"]["agreement"] == 1.0 and res["per_type"]["max_words"]["ours_met"] == 1


def test_eval_batch_times_greedy_generation_per_batch_size_and_compares_the_answers(tmp_path, tiny_sft, env):
    """bench/eval_batch.py: one run per batch size over the same prompts; the first batch size's answers compared
    with each other's (greedy: a speed setting must not change them), the fastest named."""
    pytest.importorskip("ctranslate2")
    from gamealign.io import write_jsonl
    from gamealign.prompts import builtin_prompts

    write_jsonl(tmp_path / "p.jsonl", builtin_prompts(6, seed=1))
    run([sys.executable, str(REPO / "bench/eval_batch.py"), "--model", str(tiny_sft), "--prompts", "p.jsonl",
         "--batch-sizes", "4", "2", "--max-new-tokens", "8", "--threads", "1", "--out", "r.json"], cwd=tmp_path, env=env)
    res = json.loads((tmp_path / "r.json").read_text())
    assert [r["batch_size"] for r in res["runs"]] == [4, 2]
    assert all(r["n_prompts"] == 6 and r["new_tokens"] > 0 for r in res["runs"])
    assert res["runs"][0]["same_answers_as_first"] == 6
    assert 0 <= res["runs"][1]["same_answers_as_first"] <= 6
    assert res["fastest_batch_size"] in (4, 2)
    assert max(r["speed_vs_best"] for r in res["runs"]) == 1.0
