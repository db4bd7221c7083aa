# Every model (SFT and each algorithm x round) answers each benchmark's prompts greedily. The
# held-out prompts double as the offline ("builtin") AlpacaEval / Arena-Hard prompt set, with the
# SFT model's answers as reference, so they are generated once per model.
from gamealign.evaluation.registry import BENCHMARKS, scored_against_reference

BENCHES = config["evaluation"]["benchmarks"]
# judged benchmarks with their own prompts and reference answers, unless they run offline on the held-out prompts
EXTERNAL = [b for b in scored_against_reference() if b in BENCHES and config["evaluation"][b]["source"] != "builtin"]


def prompt_set(bench):
    return bench if bench in EXTERNAL else "heldout"


def reference_for(bench):
    """(answers file, name) of the benchmark's baseline: the reference file, or the SFT model's answers."""
    if bench in EXTERNAL:
        return f"{R}/prompts/eval_{bench}_reference.jsonl", "auto"
    return f"{R}/eval/sft/heldout_generations.jsonl", "sft"


wildcard_constraints:
    promptset="|".join(["heldout", *scored_against_reference()]),
    bench="|".join(scored_against_reference()),


rule bench_data:
    output:
        prompts=f"{R}/prompts/eval_{{bench}}.jsonl",
        reference=f"{R}/prompts/eval_{{bench}}_reference.jsonl",
    params:
        bench=lambda w: jq(only(config["evaluation"][w.bench], "source", "path", "limit", "questions", "answers")),
    resources:
        mem_mb=2000,
    benchmark:
        f"{R}/benchmarks/bench_data/{{bench}}.tsv"
    log:
        f"{R}/logs/bench_data/{{bench}}.log",
    shell:
        "gamealign bench-data --bench {wildcards.bench} --params {params.bench:q} "
        "--out-prompts {output.prompts} --out-reference {output.reference} > {log} 2>&1"


EVAL_GEN = f"{R}/eval/{{model_id}}"
EVAL_GEN_PARAMS = dict(
    evaluation=jq(only(config["evaluation"], "max_new_tokens", "batch_size")),
    seed=derive_seed(SEED, "eval_generate"),
    system=sys_prompt_arg(),
    backend=backend_args(),
)
EVAL_GEN_CMD = ("gamealign sample --greedy --model {input.model} --prompts {input.prompts} --out {output.gens} "
                "--stats {output.stats} --params {params.evaluation:q} --seed {params.seed} {params.system} "
                "{params.backend} --gpu-memory-utilization {GPU_MEMORY} {TRUST} --threads {threads}")

if SHARDS == 1:

    rule eval_generate:
        input:
            model=lambda w: model_for_id(w.model_id),
            prompts=f"{R}/prompts/eval_{{promptset}}.jsonl",
        output:
            gens=f"{EVAL_GEN}/{{promptset}}_generations.jsonl",
            stats=f"{EVAL_GEN}/{{promptset}}_generations.stats.json",
        params:
            **EVAL_GEN_PARAMS,
        threads: THREADS
        resources:
            mem_mb=4000,
            gpu=GPUS,
        benchmark:
            f"{R}/benchmarks/eval_generate/{{model_id}}_{{promptset}}.tsv"
        log:
            f"{R}/logs/eval/{{model_id}}_{{promptset}}_generate.log",
        shell:
            EVAL_GEN_CMD + " > {log} 2>&1"

else:

    rule eval_generate:  # one shard
        input:
            model=lambda w: model_for_id(w.model_id),
            prompts=f"{R}/prompts/eval_{{promptset}}.jsonl",
        output:
            gens=f"{EVAL_GEN}/shards/{{promptset}}_{{shard}}.jsonl",
            stats=f"{EVAL_GEN}/shards/{{promptset}}_{{shard}}.stats.json",
        params:
            **EVAL_GEN_PARAMS,
        threads: THREADS
        resources:
            mem_mb=4000,
            gpu=GPUS,
        benchmark:
            f"{R}/benchmarks/eval_generate/{{model_id}}_{{promptset}}_{{shard}}.tsv"
        log:
            f"{R}/logs/eval/{{model_id}}_{{promptset}}_generate_{{shard}}.log",
        shell:
            EVAL_GEN_CMD + " --shard {wildcards.shard} --shards " + str(SHARDS) + " > {log} 2>&1"

    rule merge_generations:
        input:
            prompts=f"{R}/prompts/eval_{{promptset}}.jsonl",
            gens=expand(f"{EVAL_GEN}/shards/{{promptset}}_{{shard}}.jsonl", shard=range(SHARDS), allow_missing=True),
            stats=expand(f"{EVAL_GEN}/shards/{{promptset}}_{{shard}}.stats.json", shard=range(SHARDS),
                         allow_missing=True),
        output:
            gens=f"{EVAL_GEN}/{{promptset}}_generations.jsonl",
            stats=f"{EVAL_GEN}/{{promptset}}_generations.stats.json",
        resources:
            mem_mb=1000,
        benchmark:
            f"{R}/benchmarks/merge_generations/{{model_id}}_{{promptset}}.tsv"
        log:
            f"{R}/logs/eval/{{model_id}}_{{promptset}}_generate_merge.log",
        shell:
            "gamealign merge-samples --prompts {input.prompts} --shards {input.gens} --shard-stats {input.stats} "
            "--out {output.gens} --stats {output.stats} > {log} 2>&1"


rule eval_winrate:
    input:
        candidate=f"{R}/eval/{{model_id}}/heldout_generations.jsonl",
        baseline=f"{R}/eval/sft/heldout_generations.jsonl",
        prompts=f"{R}/prompts/eval_heldout.jsonl",
    output:
        score=f"{R}/eval/{{model_id}}/heldout_winrate.json",
        judgments=f"{R}/eval/{{model_id}}/heldout_judgments.jsonl",
    params:
        judge=jq(determining("judge", evaluation_judge(config))),
        ci=config["evaluation"]["ci_level"],
        seed=derive_seed(SEED, "eval_winrate"),
        cache=f"{R}/cache/judge.sqlite",
    resources:
        mem_mb=1000,
    benchmark:
        f"{R}/benchmarks/eval_winrate/{{model_id}}.tsv"
    log:
        f"{R}/logs/eval/{{model_id}}_winrate.log",
    shell:
        "gamealign judge-eval --prompts {input.prompts} --candidate {input.candidate} "
        "--baseline {input.baseline} --judge {params.judge:q} --runtime {EVAL_JUDGE_RUNTIME:q} --out {output.score} "
        "--judgments {output.judgments} --cache {params.cache} --ci-level {params.ci} "
        "--seed {params.seed} --model-id {wildcards.model_id} > {log} 2>&1"


rule eval_score:
    input:
        candidate=lambda w: f"{R}/eval/{w.model_id}/{prompt_set(w.bench)}_generations.jsonl",
        reference=lambda w: reference_for(w.bench)[0],
        prompts=lambda w: f"{R}/prompts/eval_{prompt_set(w.bench)}.jsonl",
    output:
        score=f"{R}/eval/{{model_id}}/{{bench}}.json",
        judgments=f"{R}/eval/{{model_id}}/{{bench}}_judgments.jsonl",
    params:
        judge=jq(determining("judge", evaluation_judge(config))),
        # the settings of this benchmark's aggregation only (not another benchmark's)
        evaluation=lambda w: jq({"ci_level": config["evaluation"]["ci_level"],
                                 "protocol": config["evaluation"]["protocol"],
                                 w.bench: only(config["evaluation"][w.bench], "lc_glm", "n_boot", "bootstrap",
                                               *(["annotator"] if config["evaluation"]["protocol"] == "official"
                                                 else []))}),
        reference_name=lambda w: reference_for(w.bench)[1],
        seed=lambda w: derive_seed(SEED, "eval_score", w.bench),
        cache=f"{R}/cache/judge.sqlite",
    resources:
        mem_mb=2000,
    benchmark:
        f"{R}/benchmarks/eval_score/{{model_id}}_{{bench}}.tsv"
    log:
        f"{R}/logs/eval/{{model_id}}_{{bench}}.log",
    shell:
        "gamealign score --bench {wildcards.bench} --prompts {input.prompts} --candidate {input.candidate} "
        "--reference {input.reference} --reference-name {params.reference_name} --judge {params.judge:q} "
        "--runtime {EVAL_JUDGE_RUNTIME:q} "
        "--params {params.evaluation:q} --out {output.score} --judgments {output.judgments} "
        "--cache {params.cache} --seed {params.seed} --model-id {wildcards.model_id} > {log} 2>&1"


if config["evaluation"]["ifeval"]["source"] == "builtin":

    rule eval_ifeval:
        input:
            gens=f"{R}/eval/{{model_id}}/heldout_generations.jsonl",
            prompts=f"{R}/prompts/eval_heldout.jsonl",
        output:
            score=f"{R}/eval/{{model_id}}/ifeval.json",
            per_prompt=f"{R}/eval/{{model_id}}/ifeval_items.jsonl",
        params:
            ci=config["evaluation"]["ci_level"],
            seed=derive_seed(SEED, "eval_ifeval"),
        resources:
            mem_mb=500,
        benchmark:
            f"{R}/benchmarks/eval_ifeval/{{model_id}}.tsv"
        log:
            f"{R}/logs/eval/{{model_id}}_ifeval.log",
        shell:
            "gamealign ifeval --prompts {input.prompts} --generations {input.gens} --out {output.score} "
            "--items {output.per_prompt} --ci-level {params.ci} --seed {params.seed} --model-id {wildcards.model_id} "
            "> {log} 2>&1"

else:

    # lm-evaluation-harness's own ifeval task: it answers with the model itself (not eval_generate's answers)
    rule eval_ifeval:
        input:
            model=lambda w: model_for_id(w.model_id),
            prompts=f"{R}/prompts/eval_heldout.jsonl",
        output:
            score=f"{R}/eval/{{model_id}}/ifeval.json",
            per_prompt=f"{R}/eval/{{model_id}}/ifeval_items.jsonl",
            raw=f"{R}/eval/{{model_id}}/ifeval_lmeval.json",
        params:
            ifeval=jq(config["evaluation"]["ifeval"]),
            max_new_tokens=config["evaluation"]["max_new_tokens"],
            batch_size=config["evaluation"]["batch_size"],
            system=sys_prompt_arg(),
            ci=config["evaluation"]["ci_level"],
            seed=derive_seed(SEED, "eval_ifeval"),
        threads: THREADS
        resources:
            mem_mb=6000,
            gpu=GPUS,
        benchmark:
            f"{R}/benchmarks/eval_ifeval/{{model_id}}.tsv"
        log:
            f"{R}/logs/eval/{{model_id}}_ifeval.log",
        shell:
            "gamealign ifeval --source lm_eval --model {input.model} --params {params.ifeval:q} "
            "--prompts {input.prompts} --max-new-tokens {params.max_new_tokens} --batch-size {params.batch_size} "
            "--out {output.score} --items {output.per_prompt} --raw {output.raw} --ci-level {params.ci} "
            "--seed {params.seed} --model-id {wildcards.model_id} --threads {threads} {params.system} > {log} 2>&1"


rule eval_leaderboard:
    input:
        model=lambda w: model_for_id(w.model_id),
    output:
        score=f"{R}/eval/{{model_id}}/open_llm.json",
        samples=f"{R}/eval/{{model_id}}/open_llm_samples.jsonl",
        raw=f"{R}/eval/{{model_id}}/open_llm_lmeval.json",
    params:
        # not `models` (which models run: it changes no model's score)
        open_llm=jq({k: v for k, v in config["evaluation"]["open_llm"].items() if k != "models"}),
        seed=derive_seed(SEED, "eval_leaderboard"),
    threads: THREADS
    resources:
        mem_mb=6000,
        gpu=GPUS,
    benchmark:
        f"{R}/benchmarks/eval_leaderboard/{{model_id}}.tsv"
    log:
        f"{R}/logs/eval/{{model_id}}_open_llm.log",
    shell:
        "gamealign leaderboard --model {input.model} --params {params.open_llm:q} --out {output.score} "
        "--samples {output.samples} --raw {output.raw} --seed {params.seed} --model-id {wildcards.model_id} "
        "--threads {threads} > {log} 2>&1"
