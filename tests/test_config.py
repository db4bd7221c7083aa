import subprocess

import pytest
import yaml

from gamealign.config import ConfigError, load_config, validate_config


def test_defaults_are_filled_from_schema():
    cfg = validate_config({})
    assert cfg["study"]["rounds"] == 2
    assert cfg["algorithms"]["dpo"]["beta"] == 0.1
    assert cfg["algorithms"]["inpo"]["eta"] == 0.005
    assert cfg["model"]["trust_remote_code"] is False


SHIPPED = ["config.yaml", "configs/smoke.yaml", "configs/paper-inpo.yaml", "configs/paper-sppo.yaml",
           "configs/paper-iterative-dpo.yaml", "configs/paper-spac.yaml", "configs/paper-wind.yaml",
           "configs/benchmarks-local.yaml", "configs/gpu-smollm2.yaml"]


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_configs_validate(repo, path):
    load_config(repo / path)


@pytest.mark.parametrize("path", [p for p in SHIPPED if "paper-" in p])
def test_paper_configs_dry_run(repo, env, tmp_path, path):
    from conftest import snakemake_bin

    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "--configfile",
                           str(repo / path), "--cores", "1", "-n", "--quiet", "rules"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train" in proc.stdout + proc.stderr


@pytest.mark.parametrize("bad, key", [
    ({"algorithms": {"nope": {}}}, "algorithms.nope"),
    ({"algorithms": {"dpo": {"beta": -0.1}}}, "algorithms.dpo.beta"),
    ({"model": {"source": "local", "path": "/does/not/exist"}}, "model.path"),
    ({"sampling": {"k": "four"}}, "sampling.k"),
    ({"study": {"rounds": 0}}, "study.rounds"),
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"prompts": {"source": "file"}}, "prompts.path"),
    ({"algorithms": {"wind": {"eta": 20.0, "beta": 0.1}}}, "algorithms.wind.eta"),  # ηβ = 2 > 1
    ({"train": {"lr_scheduler": "exponential"}}, "train.lr_scheduler"),
    ({"algorithms": {"sppo": {"win_rate": "mean"}}}, "algorithms.sppo.win_rate"),
    ({"evaluation": {"judge": {"name": "oracle"}}}, "evaluation.judge.name"),
    ({"evaluation": {"judge": {"name": "reward_model"}}}, "evaluation.judge.path"),
])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ConfigError) as err:
        validate_config(bad)
    assert f"'{key}'" in str(err.value)


def test_snakemake_stops_before_any_job_on_bad_config(repo, env, tmp_path):
    from conftest import snakemake_bin

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"algorithms": {"dpo": {"beta": -1}}}))
    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "work"),
                           "--configfile", str(cfg), "--cores", "1"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "algorithms.dpo.beta" in proc.stderr + proc.stdout
    assert not (tmp_path / "work" / "results").exists()


def test_cli_validate_config(repo, env, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sampling: {k: four}\n")
    proc = subprocess.run(["gamealign", "validate-config", str(cfg)], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "sampling.k" in proc.stderr


def test_every_cli_subcommand_builds_its_help(env):
    from gamealign.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"prepare-sft", "prompts", "sample", "annotate", "train", "judge-eval", "bench-data", "score",
            "check-artifacts", "report", "validate-config"} <= set(commands)
    for name in commands:
        proc = subprocess.run(["gamealign", name, "--help"], env=env, capture_output=True, text=True)
        assert proc.returncode == 0 and "usage" in proc.stdout, name


@pytest.mark.parametrize("path", [p for p in SHIPPED if "paper-" in p])
def test_slurm_profile_dry_runs_the_paper_configs_with_gpu_resources(repo, env, tmp_path, path):
    """The SLURM executor profile plans the paper studies: GPU stages ask for GPUs, the rest for CPU nodes."""
    import re

    from conftest import snakemake_bin

    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "--profile",
                           str(repo / "workflow/profiles/slurm"), "--configfile", str(repo / path), "-n"],
                          env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)
    assert jobs, out[-2000:]
    by_rule = {}
    for rule, resources in jobs:
        by_rule.setdefault(rule, resources)
    for rule in ("sample", "train", "eval_generate"):
        assert "slurm_partition=gpu" in by_rule[rule] and re.search(r"\bgpu=\d", by_rule[rule]), (rule, by_rule[rule])
    for rule in ("annotate", "eval_score"):
        assert "slurm_partition=cpu" in by_rule[rule] and not re.search(r"\bgpu=", by_rule[rule]), rule


def _planned_resources(repo, env, workdir, config_path):
    """{rule: its first job's `resources:` line} of a local dry-run (-p prints them)."""
    import re

    from conftest import snakemake_bin

    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(workdir), "--configfile",
                           str(config_path), "--cores", "4", "--resources", "gpu=4", "-n"],
                          env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    by_rule = {}
    for rule, block in re.findall(r"^rule (\w+):\n((?:    .*\n)*)", out, flags=re.M):
        by_rule.setdefault(rule, block)
    return by_rule


def test_model_jobs_declare_gpus_per_job_and_every_job_a_benchmark_file(repo, env, tmp_path):
    """study.gpus_per_job → resource gpu on the model jobs (training: × train.num_processes), none on
    CPU jobs, so `--resources gpu=N` bounds the GPUs in use; every working rule writes a benchmark file."""
    cfg = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    cfg["study"]["gpus_per_job"] = 1
    cfg.setdefault("train", {}).update(num_processes=2, batch_size=4)
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    jobs = _planned_resources(repo, env, tmp_path / "gpu", path)
    for rule in ("prepare_sft", "sample", "eval_generate"):
        assert "gpu=1," in jobs[rule], (rule, jobs[rule])
    assert "gpu=2," in jobs["train"], jobs["train"]
    for rule in ("prompts", "annotate", "eval_winrate", "report"):
        assert "gpu=" not in jobs[rule], (rule, jobs[rule])
    for rule, block in jobs.items():
        if rule != "all":
            assert f"benchmark: results/benchmarks/{rule}/" in block, (rule, block)
    cpu = _planned_resources(repo, env, tmp_path / "cpu", repo / "configs/smoke.yaml")
    assert "gpu=0," in cpu["train"], cpu["train"]


def test_paper_presets_follow_their_sources(repo):
    """The training keys the configs' comments cite from the authors' scripts (uclaml/SPPO run_sppo_mistral.sh →
    pipeline.sh --num 1, config_full.yaml; RLHFlow/Online-RLHF configs/training.yaml)."""
    sppo = load_config(repo / "configs/paper-sppo.yaml", check_paths=False)
    assert (sppo["train"]["epochs"], sppo["train"]["lr_scheduler"], sppo["train"]["warmup_ratio"]) == (1, "linear", 0.1)
    assert sppo["train"]["max_length"] == 1024 and sppo["algorithms"]["sppo"]["win_rate"] == "with_self"
    for name in ("iterative-dpo", "inpo"):
        cfg = load_config(repo / f"configs/paper-{name}.yaml", check_paths=False)
        assert (cfg["train"]["epochs"], cfg["train"]["lr_scheduler"]) == (2, "cosine"), name


def test_the_evaluation_judge_is_its_own_judge_section_and_reaches_the_benchmark_rules(repo, env, tmp_path):
    """evaluation.judge gets `judge`'s defaults; unset, the annotator judges the benchmarks; set, the
    win-rate rules (eval_winrate, eval_score) run with it while annotation keeps the annotator."""
    from conftest import snakemake_bin

    from gamealign.config import evaluation_judge

    same = validate_config({}, check_paths=False)
    assert same["evaluation"]["judge"] is None and evaluation_judge(same) == same["judge"]
    cfg = validate_config({"evaluation": {"judge": {"criteria": ["relevance", "complete"]}}}, check_paths=False)
    assert evaluation_judge(cfg)["name"] == "panel" and evaluation_judge(cfg)["max_length"] == 1024  # defaults
    smoke = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    smoke.setdefault("evaluation", {})["judge"] = {"criteria": ["relevance", "complete"]}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(smoke))
    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "w"), "--configfile",
                           str(path), "--cores", "1", "-n", "-p"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cmds = [line.split("Shell command:", 1)[-1].strip() for line in (proc.stdout + proc.stderr).splitlines()
            if "gamealign " in line]
    evals = [c for c in cmds if c.startswith(("gamealign judge-eval", "gamealign score"))]
    annots = [c for c in cmds if c.startswith("gamealign annotate")]
    assert evals and annots
    assert all('"criteria": ["relevance", "complete"]' in c for c in evals)
    assert not any('"criteria": ["relevance", "complete"]' in c for c in annots)


def test_study_seeds_name_the_key_and_default_to_the_one_seed(repo):
    from gamealign.config import ConfigError, replicate_dir, study_seeds, validate_config

    cfg = load_config(repo / "configs/smoke.yaml")
    assert study_seeds(cfg) == [0] and replicate_dir(cfg, 0) == ""
    cfg["study"]["seeds"] = [3, 5]
    assert study_seeds(validate_config(cfg)) == [3, 5] and replicate_dir(cfg, 5) == "seed5/"
    for bad in ([1, 1], [], [-1]):
        cfg["study"]["seeds"] = bad
        with pytest.raises(ConfigError, match="study.seeds"):
            validate_config(cfg)


def test_runtime_knobs_split_off_and_merge_back():
    from gamealign.config import RUNTIME_KEYS, merge_runtime, split_runtime
    cfg = validate_config({}, check_paths=False)
    for section in RUNTIME_KEYS:
        det, rt = split_runtime(section, cfg[section])
        assert rt and merge_runtime(det, rt) == cfg[section]
    det, rt = split_runtime("judge", cfg["judge"])
    assert rt == {"http": {k: cfg["judge"]["http"][k]
                           for k in ("timeout_s", "max_retries", "backoff_s", "api_key_env", "concurrency")}}
    assert "timeout_s" not in det["http"] and det["http"]["base_url"] == cfg["judge"]["http"]["base_url"]
    assert det["name"] == cfg["judge"]["name"] and "checkpoint_every" not in split_runtime("train", cfg["train"])[0]
    assert split_runtime("prompts", cfg["prompts"]) == (cfg["prompts"], {})


def test_the_cli_takes_its_defaults_from_the_schema():
    from gamealign.cli import build_parser
    from gamealign.config import fill_section, schema_default
    a = build_parser().parse_args(["sample", "--model", "m", "--prompts", "p", "--out", "o", "--params", "{}"])
    assert a.backend == schema_default("sampling.backend") == "auto"
    assert a.gpu_memory_utilization == schema_default("sampling.gpu_memory_utilization")
    filled = fill_section("sampling", {"k": 2})
    assert filled["k"] == 2 and filled["temperature"] == schema_default("sampling.temperature")
    assert filled["top_p"] == schema_default("sampling.top_p")
    with pytest.raises(ConfigError, match="sampling.temperatur"):
        fill_section("sampling", {"temperatur": 0.5})


def test_a_lora_and_sharded_config_dry_runs_through_the_slurm_profile(repo, env, tmp_path):
    """train.peft and sampling.shards at paper scale: the SLURM profile plans them, the train jobs get the adapter
    settings, and every sampling / generation shard is its own GPU job."""
    import re

    from conftest import snakemake_bin

    cfg = yaml.safe_load((repo / "configs/paper-inpo.yaml").read_text())
    cfg.setdefault("train", {}).pop("trainable_layers", None)
    cfg["train"]["peft"] = {"r": 16, "alpha": 32}
    cfg["sampling"]["shards"] = 4
    path = tmp_path / "lora.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "w"), "--profile",
                           str(repo / "workflow/profiles/slurm"), "--configfile", str(path), "-n", "-p"],
                          env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    trains = [line for line in out.splitlines() if " train --algorithm " in line]
    assert trains and all('"peft": {"alpha": 32, "dropout": 0.0, "r": 16' in line for line in trains)
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)
    by_rule = {}
    for rule, resources in jobs:
        by_rule.setdefault(rule, resources)
    for rule in ("sample", "eval_generate"):    # each shard a GPU job
        assert "slurm_partition=gpu" in by_rule[rule] and re.search(r"\bgpu=[1-9]", by_rule[rule]), (rule, by_rule[rule])
    for rule in ("merge_samples", "merge_generations"):
        assert "slurm_partition=cpu" in by_rule[rule], (rule, by_rule[rule])
    assert sum(1 for line in out.splitlines() if "--shard 3 --shards 4" in line) > 0


def test_the_official_protocol_needs_the_http_judge():
    with pytest.raises(ConfigError, match="evaluation.protocol': official needs the http judge"):
        validate_config({"evaluation": {"protocol": "official"}}, check_paths=False)
    cfg = validate_config({"evaluation": {"protocol": "official",
                                          "judge": {"name": "http", "http": {"base_url": "http://x/v1"}}}},
                          check_paths=False)
    assert cfg["evaluation"]["alpaca_eval"]["annotator"] == "weighted_alpaca_eval_gpt4_turbo"
