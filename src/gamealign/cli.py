"""`gamealign <stage>`: one entry point per Snakemake rule. Inputs, outputs and params are explicit."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def cmd_validate_config(a):
    from .config import load_config

    cfg = load_config(a.config)
    print(json.dumps(cfg, indent=2, sort_keys=True) if a.show else f"{a.config}: OK")


def cmd_prepare_sft(a):
    from .models import prepare_sft

    _threads(a.threads)
    info = prepare_sft(a.params, a.out, seed=a.seed)
    print(json.dumps(info, indent=2))


def cmd_prompts(a):
    from .io import write_jsonl
    from .prompts import make_prompt_sets

    sets = make_prompt_sets(a.params, a.rounds, a.seed)
    out = Path(a.out_dir)
    for name, rows in sets.items():
        write_jsonl(out / f"{name}.jsonl", rows)
        print(f"{out / name}.jsonl: {len(rows)} prompts")


def cmd_sample(a):
    if a.backend in ("auto", "ct2"):
        # CTranslate2 before torch: torch puts its OpenMP runtime in the process's global symbol scope, and a
        # CTranslate2 loaded after it binds GOMP_parallel & co. to torch's libgomp instead of its own bundled one
        # (LD_DEBUG=bindings shows it); its generation then ran about 20 % slower here (bench/README.md)
        with contextlib.suppress(ImportError):
            import ctranslate2  # noqa: F401
    from .config import fill_section
    from .io import read_jsonl, write_json, write_jsonl
    from .sampling_vllm import resolve_backend

    _threads(a.threads)
    prompts = read_jsonl(a.prompts, required=("id", "messages"))
    p = fill_section("evaluation" if a.greedy else "sampling", a.params)   # the schema's defaults, no others
    backend = resolve_backend(a.backend)
    seed = a.seed
    if a.shards > 1:   # sampling.shards: this job's contiguous share of the prompts (gamealign merge-samples joins them)
        from .sampling import shard_of

        prompts, seed = shard_of(prompts, a.shard, a.shards, seed, per_prompt_seeds=backend == "vllm")
    common = dict(temperature=0.0 if a.greedy else p["temperature"], top_p=1.0 if a.greedy else p["top_p"],
                  max_new_tokens=p["max_new_tokens"], seed=seed, greedy=a.greedy, system_prompt=a.system_prompt)
    k = 1 if a.greedy else p["k"]
    if backend == "vllm":
        from .sampling_vllm import generate_vllm

        rows, stats = generate_vllm(a.model, prompts, k, tensor_parallel_size=a.tensor_parallel_size,
                                    gpu_memory_utilization=a.gpu_memory_utilization, **common)
    elif backend == "ct2":
        from .sampling_ct2 import generate_ct2

        rows, stats = generate_ct2(a.model, prompts, k, batch_size=p["batch_size"], threads=a.threads,
                                   desc=f"sampling {a.out}", **common)
        stats["backend"] = backend
    else:
        import torch

        from .models import load_model
        from .sampling import hf_generator

        model, tok = load_model(a.model, trust_remote_code=a.trust_remote_code)
        if torch.cuda.is_available():
            model.to("cuda")
        run = hf_generator(backend)
        rows, stats = run(model, tok, prompts, k, batch_size=p["batch_size"], desc=f"sampling {a.out}", **common)
        stats["backend"] = backend
    write_jsonl(a.out, rows)
    if a.stats:
        from .provenance import manifest

        shard = {"shard": a.shard, "shards": a.shards, "shard_seed": seed} if a.shards > 1 else {}
        write_json(a.stats, {**manifest("sample", p, a.seed, model=a.model, prompts=a.prompts, greedy=a.greedy),
                             **shard, **stats})
    print(json.dumps(stats))


def cmd_offline_data(a):
    from .offline_data import read_rows, write_study_files

    print(json.dumps(write_study_files(read_rows(a.params), a.out_dir, a.params)))


def cmd_merge_samples(a):
    from .io import read_json, read_jsonl, write_json, write_jsonl
    from .sampling import merge_shards

    prompts = read_jsonl(a.prompts, required=("id", "messages"))
    shards = [read_jsonl(path, required=("prompt_id", "k", "text"), allow_empty=True) for path in a.shards]
    rows = merge_shards(prompts, shards, a.shards)
    write_jsonl(a.out, rows)
    if a.stats:
        from .sampling import merge_shard_stats

        write_json(a.stats, merge_shard_stats([read_json(p) for p in a.shard_stats], a.shard_stats))
    print(json.dumps({"rows": len(rows), "shards": len(a.shards)}))


def cmd_annotate(a):
    import pandas as pd

    from .io import atomic_path, read_jsonl, write_json
    from .judges import JudgeCache, annotate_groups, make_judge

    prompts = {p["id"]: p for p in read_jsonl(a.prompts, required=("id", "messages"))}
    samples = read_jsonl(a.samples, required=("prompt_id", "k", "text"))
    groups: dict[str, dict[int, str]] = {}
    cut: dict[str, dict[int, bool]] = {}
    for r in samples:
        if r["prompt_id"] not in prompts:
            raise SystemExit(f"{a.samples}: prompt_id {r['prompt_id']} is not in {a.prompts}")
        groups.setdefault(r["prompt_id"], {})[int(r["k"])] = r["text"]
        cut.setdefault(r["prompt_id"], {})[int(r["k"])] = r.get("finish_reason", "stop") == "length"
    groups_list = {pid: [d[k] for k in sorted(d)] for pid, d in groups.items()}
    truncated = {pid: [d[k] for k in sorted(d)] for pid, d in cut.items()}
    judge = make_judge(a.judge)
    rows, stats = annotate_groups(judge, prompts, groups_list, JudgeCache(a.cache), desc=f"judging {a.samples}",
                                  truncated=truncated, mode=a.truncated, plans=a.plans)
    stats["judge_comparisons"] = stats["pairs"] - stats["identical_pairs"] - stats["truncated_rule_pairs"]
    stats["truncated_samples"] = sum(map(sum, truncated.values()))
    df = pd.DataFrame(rows, columns=["prompt_id", "i", "j", "p"]).astype({"i": "int32", "j": "int32", "p": "float64"})
    with atomic_path(a.out) as tmp:
        df.to_parquet(tmp, index=False)
    from .provenance import manifest

    write_json(a.stats, {**manifest("annotate", a.judge, None, samples=a.samples, prompts=a.prompts,
                                    judge_identity=judge.identity()), **stats})
    print(json.dumps(stats))


def cmd_train(a):
    from .io import read_json
    from .training import load_groups, train_round

    # under `accelerate launch` the job's threads are shared by its processes
    _threads(max(1, a.threads // int(os.environ.get("WORLD_SIZE", "1"))) if a.threads else None)
    counts = {"samples": 0, "truncated": 0, "judge_comparisons_made": 0}
    for path in a.sample_stats or []:
        stats = read_json(path)
        counts["samples"] += stats["n_sequences"]
        counts["truncated"] += stats.get("truncated", 0)
    for path in a.pref_stats or []:
        counts["judge_comparisons_made"] += read_json(path)["judge_comparisons"]
    prev = read_json(a.prev_manifest)["counts"] if a.prev_manifest else {}
    counts["samples_cum"] = prev.get("samples_cum", 0) + counts["samples"]
    # charged by the trainer: the comparisons this algorithm's examples read from new preference data
    counts["charge_new_prefs"] = bool(a.pref_stats)
    counts["judge_calls_cum_prev"] = prev.get("judge_calls_cum", 0)
    # sampling.truncated as the annotation applied it: under `drop` the cut responses leave the groups
    groups = load_groups(a.samples, a.prefs, drop_truncated=a.truncated == "drop", plan_seed=a.plan_seed)
    counts["charge_rule_decided"] = a.truncated == "lose"
    selfplay = load_groups(a.selfplay) if a.selfplay else None
    info = train_round(algorithm=a.algorithm, hparams=a.hparams, train_cfg=a.train, init_model=a.init_model,
                       ref_model=a.ref_model, prompts_path=a.prompts, groups=groups, selfplay_groups=selfplay, out_dir=a.out,
                       seed=a.seed, counts=counts, system_prompt=a.system_prompt, trust_remote_code=a.trust_remote_code,
                       run_name=a.run_name, tracking_dir=a.tracking_dir,
                       data_files={"prompts": a.prompts, "samples": a.samples, "prefs": a.prefs,
                                   "selfplay": a.selfplay})
    print(json.dumps({"final_loss": info["final_loss"], "counts": info["counts"], "timings": info["timings"]}))


def cmd_judge_eval(a):
    from .evaluation.winrate import judge_against_baseline

    res = judge_against_baseline(prompts_path=a.prompts, candidate_path=a.candidate, baseline_path=a.baseline,
                                 judge_cfg=a.judge, out_json=a.out, out_judgments=a.judgments, cache_path=a.cache,
                                 ci_level=a.ci_level, seed=a.seed, model_id=a.model_id)
    print(json.dumps({k: res[k] for k in ("model_id", "win_rate", "ci_low", "ci_high")}))


def cmd_ifeval(a):
    from .evaluation.ifeval import run_lm_eval_ifeval, score_ifeval

    if a.source == "lm_eval":
        missing = [f"--{k.replace('_', '-')}" for k in ("model", "params", "raw", "max_new_tokens") if getattr(a, k) is None]
        if missing:
            raise SystemExit(f"gamealign ifeval --source lm_eval needs {', '.join(missing)}")
        _threads(a.threads)
        res = run_lm_eval_ifeval(model_path=a.model, params=a.params, prompts_path=a.prompts, out_json=a.out,
                                 out_items=a.items, out_raw=a.raw, max_new_tokens=a.max_new_tokens,
                                 batch_size=a.batch_size, ci_level=a.ci_level, seed=a.seed, model_id=a.model_id,
                                 system_prompt=a.system_prompt)
    else:
        if a.generations is None:
            raise SystemExit("gamealign ifeval needs --generations (the model's answers) with --source builtin")
        res = score_ifeval(prompts_path=a.prompts, generations_path=a.generations, out_json=a.out, out_items=a.items,
                           ci_level=a.ci_level, seed=a.seed, model_id=a.model_id)
    print(json.dumps({k: res[k] for k in ("model_id", "prompt_level", "instruction_level", "n_prompts")}))


def cmd_bench_data(a):
    """Write a benchmark's prompts and reference answers in the study's formats."""
    from .evaluation.benchmarks import load_alpaca_eval, load_arena_hard
    from .io import write_jsonl

    p = a.params
    if a.bench == "alpaca_eval":
        prompts, refs = load_alpaca_eval(p.get("path") if p["source"] == "file" else None, p.get("limit"))
    else:
        prompts, refs = load_arena_hard(p["questions"], p["answers"], p.get("limit"))
    write_jsonl(a.out_prompts, prompts)
    write_jsonl(a.out_reference, refs)
    print(f"{a.bench}: {len(prompts)} prompts, {len(refs)} reference answers")


def cmd_score(a):
    from .evaluation.registry import BENCHMARKS
    from .io import read_jsonl

    name = a.reference_name
    if name == "auto":  # the reference file names its generator (gpt4_1106_preview, gpt-4-0314, ...)
        name = read_jsonl(a.reference, required=("prompt_id", "text"))[0].get("generator", "reference")
    res = BENCHMARKS[a.bench].score(
        protocol=a.params.get("protocol", "builtin"), section=a.params.get(a.bench), prompts_path=a.prompts, candidate_path=a.candidate, reference_path=a.reference,
        reference_name=name, judge_cfg=a.judge, out_json=a.out, out_judgments=a.judgments, cache_path=a.cache,
        ci_level=a.params["ci_level"], seed=a.seed, model_id=a.model_id)
    print(json.dumps({k: res[k] for k in ("model_id", "win_rate", "ci_low", "ci_high")}))


def cmd_leaderboard(a):
    from .evaluation.leaderboard import run_leaderboard

    _threads(a.threads)
    res = run_leaderboard(model_path=a.model, params=a.params, out_json=a.out, out_samples=a.samples,
                          out_raw=a.raw, seed=a.seed, model_id=a.model_id)
    print(json.dumps({"model_id": res["model_id"], "average": res["average"],
                      **{t: v["value"] for t, v in res["tasks"].items()}}))


def cmd_report(a):
    from .config import config_hash
    from .provenance import git_commit
    from .report import write_report

    index = a.index
    for key in ("models", "scores"):
        if not isinstance(index.get(key), list):
            raise SystemExit(f"gamealign report: --index has no list {key!r} (keys: models, scores, games)")
    prov = {**git_commit(), "config_hash": config_hash(a.config)}
    df = write_report(index["models"], index["scores"], a.out_dir, a.config, prov, index.get("games") or None)
    print(df.to_string(index=False))


def cmd_game(a):
    import pandas as pd
    import torch

    from .games import run_family
    from .io import atomic_path

    torch.set_num_threads(1)   # [C, n] tensors: thread start-up costs more than the arithmetic
    curves, runs = run_family(a.params, a.family, seed=a.seed)
    with atomic_path(a.out_dir, is_dir=True) as tmp:
        pd.DataFrame(curves).to_csv(tmp / "curves.csv", index=False, float_format="%.8g")
        pd.DataFrame(runs).to_csv(tmp / "runs.csv", index=False, float_format="%.8g")
    print(pd.DataFrame(runs).groupby("algorithm", sort=False)[["final_gap", "judge_calls_to_threshold"]].median())


def cmd_timings(a):
    from .config import load_config
    from .timings import write_timings

    bench_dir = a.bench_dir or Path(load_config(a.configfile, check_paths=False)["study"]["results_dir"]) / "benchmarks"
    _, md = write_timings(bench_dir, a.out_md, a.out_csv)
    print(md)


def cmd_check_artifacts(a):
    """Refuse to `snakemake --touch` a study whose artifacts are not all present (e.g. after dvc pull)."""
    text = sys.stdin.read() if a.summary == "-" else Path(a.summary).read_text()
    lines = [ln.split("\t") for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0][:1] != ["output_file"]:
        raise SystemExit(f"{a.summary}: not the output of `snakemake --summary`")
    header = lines[0]
    rows = [dict(zip(header, ln)) for ln in lines[1:]]
    missing = [r for r in rows if r.get("status") == "missing" and r.get("rule") not in set(a.regenerated)]
    if missing:
        listing = "\n".join(f"  {r['output_file']}  (rule {r['rule']})" for r in missing)
        raise SystemExit(f"gamealign check-artifacts: {len(missing)} artifact(s) missing; run `dvc pull` or "
                         f"`make study` first:\n{listing}")
    print(f"all {len(rows)} artifacts present (regenerated: {', '.join(a.regenerated)})")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gamealign", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for add in (_data_commands, _round_commands, _evaluation_commands, _study_commands):
        add(sub)
    return ap


def _data_commands(sub) -> None:
    """Config checks, the SFT checkpoint and the prompt partitions."""
    s = sub.add_parser("validate-config", help="validate a config against the schema")
    s.add_argument("config")
    s.add_argument("--show", action="store_true", help="print the config with every default filled")
    s.set_defaults(func=cmd_validate_config)

    s = sub.add_parser("prepare-sft", help="write the SFT checkpoint (fp32 safetensors + tokenizer + source.json)")
    s.add_argument("--params", type=_json, required=True, help="the config's `model` section (JSON)")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.set_defaults(func=cmd_prepare_sft)

    s = sub.add_parser("prompts", help="write disjoint per-round training prompts and the held-out set")
    s.add_argument("--params", type=_json, required=True, help="the config's `prompts` section (JSON)")
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_prompts)

    s = sub.add_parser("offline-data", help="a preference dataset (UltraFeedback-binarized) in the study's formats")
    s.add_argument("--params", type=_json, required=True, help="the config's offline_data section (JSON)")
    s.add_argument("--out-dir", required=True, help="writes prompts.jsonl, samples.jsonl, prefs.parquet and stats")
    s.set_defaults(func=cmd_offline_data)


def _round_commands(sub) -> None:
    """One round: sampling, annotation, training."""
    from .config import schema_choices, schema_default

    s = sub.add_parser("sample", help="K responses per prompt (or greedy with --greedy)")
    s.add_argument("--backend", choices=schema_choices("sampling.backend"),
                   default=schema_default("sampling.backend"),
                   help="auto: vLLM where importable with a GPU, CTranslate2 on CPU, else HF transformers")
    s.add_argument("--tensor-parallel-size", type=int, default=schema_default("sampling.tensor_parallel_size"),
                   help="vLLM tensor parallelism")
    s.add_argument("--gpu-memory-utilization", type=float, default=schema_default("sampling.gpu_memory_utilization"),
                   help="vLLM's share of GPU memory")
    s.add_argument("--model", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--stats")
    s.add_argument("--params", type=_json, required=True, help="the config's `sampling` (or `evaluation`) section")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--greedy", action="store_true")
    s.add_argument("--trust-remote-code", action="store_true", help="model.trust_remote_code: run the checkpoint's code")
    s.add_argument("--shard", type=int, default=0, help="this job's share of the prompts (0-based; sampling.shards)")
    s.add_argument("--shards", type=int, default=1, help="how many jobs share the prompts (sampling.shards)")
    s.add_argument("--system-prompt")
    s.add_argument("--threads", type=int)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("merge-samples", help="join sampling.shards jobs' samples into one file, in prompt order")
    s.add_argument("--prompts", required=True, help="the prompts file the shards split")
    s.add_argument("--shards", nargs="+", required=True, help="the shards' samples files, shard 0 first")
    s.add_argument("--shard-stats", nargs="*", default=[], help="the shards' stats files, shard 0 first")
    s.add_argument("--out", required=True)
    s.add_argument("--stats")
    s.set_defaults(func=cmd_merge_samples)

    s = sub.add_parser("annotate", help="judge the pairs of each prompt's responses that the comparison plans read")
    s.add_argument("--prompts", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--stats", required=True)
    s.add_argument("--judge", type=_json, required=True, help="the config's `judge` section")
    s.add_argument("--runtime", type=_json, help="runtime knobs of --judge (gamealign.config.RUNTIME_KEYS), merged into it")
    s.set_defaults(runtime_into="judge")
    s.add_argument("--cache", help="sqlite judge cache (content-hash keyed)")
    s.add_argument("--truncated", choices=["keep", "drop", "lose"], default=schema_default("sampling.truncated"),
                   help="sampling.truncated: what judging does with a response cut at max_new_tokens")
    s.add_argument("--plans", type=_json, default=[{"plan": "all", "seed": 0}],
                   help='comparison plans whose pairs are judged, [{"plan": "all|disjoint|tournament", "seed": N}, ...] '
                        "(the union; default every pair)")
    s.set_defaults(func=cmd_annotate)

    s = sub.add_parser("train", help="train one algorithm for one round")
    s.add_argument("--algorithm", required=True)
    s.add_argument("--hparams", type=_json, required=True)
    s.add_argument("--train", type=_json, required=True, help="the config's `train` section")
    s.add_argument("--runtime", type=_json, help="runtime knobs of --train (gamealign.config.RUNTIME_KEYS), merged into it")
    s.set_defaults(runtime_into="train")
    s.add_argument("--init-model", required=True)
    s.add_argument("--ref-model", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--prefs", required=True)
    s.add_argument("--selfplay", help="unlabeled self-play samples (SPAC)")
    s.add_argument("--sample-stats", nargs="*")
    s.add_argument("--pref-stats", nargs="*")
    s.add_argument("--prev-manifest")
    s.add_argument("--truncated", choices=["keep", "drop", "lose"], default=schema_default("sampling.truncated"),
                   help="sampling.truncated, as the annotation of --prefs applied it")
    s.add_argument("--plan-seed", type=int, default=0,
                   help="the comparison plan's seed the annotation used (pairs of WIND / INPO's tournament)")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--system-prompt")
    s.add_argument("--threads", type=int)
    s.add_argument("--trust-remote-code", action="store_true", help="model.trust_remote_code: run the checkpoint's code")
    s.add_argument("--run-name", help="the tracker run's name (train.report_to), e.g. dpo-r2")
    s.add_argument("--tracking-dir", help="where the trackers write (train.report_to)")
    s.set_defaults(func=cmd_train)


def _evaluation_commands(sub) -> None:
    """Benchmarks: generation is `sample --greedy`; these score it."""
    from .config import schema_choices, schema_default
    from .evaluation.registry import scored_against_reference

    s = sub.add_parser("judge-eval", help="held-out win rate of a model's responses against the baseline's")
    s.add_argument("--prompts", required=True)
    s.add_argument("--candidate", required=True)
    s.add_argument("--baseline", required=True)
    s.add_argument("--judge", type=_json, required=True)
    s.add_argument("--runtime", type=_json, help="runtime knobs of --judge (gamealign.config.RUNTIME_KEYS), merged into it")
    s.set_defaults(runtime_into="judge")
    s.add_argument("--out", required=True)
    s.add_argument("--judgments", required=True)
    s.add_argument("--cache")
    s.add_argument("--ci-level", type=float, default=schema_default("evaluation.ci_level"))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--model-id", default="")
    s.set_defaults(func=cmd_judge_eval)

    s = sub.add_parser("ifeval", help="IFEval-style instruction following: constraints met by a model's answers")
    s.add_argument("--prompts", required=True, help="prompts carrying meta.constraints (the held-out set)")
    s.add_argument("--generations", help="the model's greedy answers to them (source builtin)")
    s.add_argument("--out", required=True)
    s.add_argument("--items", required=True, help="per-prompt results (each constraint met or not)")
    s.add_argument("--source", choices=schema_choices("evaluation.ifeval.source"), default="builtin",
                   help="builtin: our checkers on --generations; lm_eval: lm-evaluation-harness's ifeval task on --model")
    s.add_argument("--model", help="source lm_eval: a saved HF model folder")
    s.add_argument("--params", type=_json, help="source lm_eval: the config's evaluation.ifeval section")
    s.add_argument("--raw", help="source lm_eval: lm-eval's results and resolved task config (JSON)")
    s.add_argument("--max-new-tokens", type=int, help="source lm_eval: evaluation.max_new_tokens (the default length)")
    s.add_argument("--batch-size", type=int, default=schema_default("evaluation.batch_size"))
    s.add_argument("--system-prompt", help="source lm_eval: model.system_prompt (lm-eval's system instruction)")
    s.add_argument("--threads", type=int)
    s.add_argument("--ci-level", type=float, default=schema_default("evaluation.ci_level"))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--model-id", default="")
    s.set_defaults(func=cmd_ifeval)


def _study_commands(sub) -> None:
    """Whole-study commands: artifacts, timings, benchmark data and scoring, the report, the game track."""
    from .evaluation.registry import scored_against_reference

    s = sub.add_parser("check-artifacts", help="fail, listing them, if study artifacts are missing")
    s.add_argument("--summary", default="-", help="output of `snakemake --summary` (file or - for stdin)")
    s.add_argument("--regenerated", nargs="*", default=["report", "all"],
                   help="rules whose outputs will be regenerated, so may be missing")
    s.set_defaults(func=cmd_check_artifacts)

    s = sub.add_parser("timings", help="per-stage wall time and peak memory of a run, from Snakemake's benchmark files")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--bench-dir", help="the study's benchmarks folder (<results_dir>/benchmarks)")
    where.add_argument("--configfile", help="a study config: its study.results_dir/benchmarks")
    s.add_argument("--out-md", help="Markdown summary (default: <bench-dir>/timings.md)")
    s.add_argument("--out-csv", help="one row per job (default: <bench-dir>/timings.csv)")
    s.set_defaults(func=cmd_timings)

    s = sub.add_parser("bench-data", help="a benchmark's prompts and reference answers from local files or the hub")
    s.add_argument("--bench", choices=scored_against_reference(), required=True)
    s.add_argument("--params", type=_json, required=True, help="the config's evaluation.<bench> section")
    s.add_argument("--out-prompts", required=True)
    s.add_argument("--out-reference", required=True)
    s.set_defaults(func=cmd_bench_data)

    s = sub.add_parser("score", help="score a model's benchmark answers against the reference's")
    s.add_argument("--bench", choices=scored_against_reference(), required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--candidate", required=True)
    s.add_argument("--reference", required=True)
    s.add_argument("--reference-name", required=True)
    s.add_argument("--judge", type=_json, required=True)
    s.add_argument("--runtime", type=_json, help="runtime knobs of --judge (gamealign.config.RUNTIME_KEYS), merged into it")
    s.set_defaults(runtime_into="judge")
    s.add_argument("--params", type=_json, required=True, help="the config's `evaluation` section")
    s.add_argument("--out", required=True)
    s.add_argument("--judgments", required=True)
    s.add_argument("--cache")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--model-id", default="")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("leaderboard", help="Open LLM Leaderboard v1 tasks through lm-evaluation-harness")
    s.add_argument("--model", required=True, help="a saved HF model folder")
    s.add_argument("--params", type=_json, required=True, help="the config's evaluation.open_llm section")
    s.add_argument("--out", required=True, help="score JSON (per-task metric, stderr, average)")
    s.add_argument("--samples", required=True, help="per-item lm-eval results (JSONL)")
    s.add_argument("--raw", required=True, help="lm-eval's results, resolved task configs and versions (JSON)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--model-id", default="")
    s.add_argument("--threads", type=int)
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("report", help="comparison tables and figures")
    s.add_argument("--index", type=_json, required=True,
                   help='what the report reads, JSON: {"models": [{"seed", "algorithm", "round", "manifest"}], '
                        '"scores": [{"seed", "algorithm", "round", "benchmark", "path"}], "games": [folder, ...]} '
                        "(seed null and manifest null for the shared SFT model)")
    s.add_argument("--config", type=_json, required=True, help="the whole resolved config (for its hash)")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("game", help="the preference-game track on one family: every algorithm x seed, exact gaps")
    s.add_argument("--family", required=True, choices=["bt", "general", "cyclic"])
    s.add_argument("--params", type=_json, required=True, help="the config's game section (JSON)")
    s.add_argument("--seed", type=int, default=0, help="study.seed: the games and runs derive their seeds from it")
    s.add_argument("--out-dir", required=True, help="writes curves.csv (every iteration) and runs.csv (every run)")
    s.set_defaults(func=cmd_game)


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from .config import ConfigError, merge_runtime
    from .io import DataError
    from .judges.base import JudgeInputError, JudgeServiceError
    from .sampling_vllm import BackendUnavailable

    if getattr(args, "runtime", None):   # the rules pass runtime knobs apart from what determines the outputs
        setattr(args, args.runtime_into, merge_runtime(getattr(args, args.runtime_into), args.runtime))
    try:
        args.func(args)
    except (ConfigError, DataError, JudgeInputError, JudgeServiceError, FileNotFoundError, BackendUnavailable) as exc:
        print(f"gamealign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
