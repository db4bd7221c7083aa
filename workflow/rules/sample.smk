# Round r of an online algorithm samples from its round r-1 model; round 1 is sampled once from
# the SFT model into runs/{rep}shared/r1 and shared by every algorithm (of that replicate).
# sampling.shards: N > 1 splits each sampling job into N `sample` jobs (a `shard` wildcard; each its own GPU job on
# a cluster) whose files `merge_samples` joins in prompt order (`gamealign merge-samples`, a CPU job).
RUN = f"{R}/runs/{{rep}}{{algo}}/r{{round}}"


def sample_model(w):
    return model_dir(w.rep, w.algo, int(w.round) - 1)


def sample_prompts(w):
    if self_play(w.algo) and from_dataset(w.algo):    # SPAC's self-play samples: on the dataset's prompts
        return f"{OFFLINE}/prompts.jsonl"
    return f"{R}/prompts/train_r{sample_prompt_round(w.algo, w.round)}.jsonl"


SAMPLE_PARAMS = dict(
    # not `truncated`: annotation and training read it, sampling does not
    sampling=jq(only(config["sampling"], "k", "temperature", "top_p", "max_new_tokens", "batch_size")),
    seed=lambda w: derive_seed(rep_seed(w.rep), "sample", w.algo, w.round),
    system=sys_prompt_arg(),
    backend=backend_args(),
)
SAMPLE_CMD = ("gamealign sample --model {input.model} --prompts {input.prompts} --out {output.samples} "
              "--stats {output.stats} --params {params.sampling:q} --seed {params.seed} {params.system} "
              "{params.backend} --gpu-memory-utilization {GPU_MEMORY} {TRUST} --threads {threads}")

if SHARDS == 1:

    rule sample:
        input:
            model=sample_model,
            prompts=sample_prompts,
        output:
            samples=f"{RUN}/samples.jsonl",
            stats=f"{RUN}/samples.stats.json",
        params:
            **SAMPLE_PARAMS,
        threads: THREADS
        resources:
            mem_mb=4000,
            gpu=GPUS,
        benchmark:
            f"{R}/benchmarks/sample/{{rep}}{{algo}}_r{{round}}.tsv"
        log:
            f"{R}/logs/sample/{{rep}}{{algo}}_r{{round}}.log",
        shell:
            SAMPLE_CMD + " > {log} 2>&1"

else:

    rule sample:  # one shard
        input:
            model=sample_model,
            prompts=sample_prompts,
        output:
            samples=f"{RUN}/shards/{{shard}}.samples.jsonl",
            stats=f"{RUN}/shards/{{shard}}.samples.stats.json",
        params:
            **SAMPLE_PARAMS,
        threads: THREADS
        resources:
            mem_mb=4000,
            gpu=GPUS,
        benchmark:
            f"{R}/benchmarks/sample/{{rep}}{{algo}}_r{{round}}_{{shard}}.tsv"
        log:
            f"{R}/logs/sample/{{rep}}{{algo}}_r{{round}}_{{shard}}.log",
        shell:
            SAMPLE_CMD + " --shard {wildcards.shard} --shards " + str(SHARDS) + " > {log} 2>&1"

    rule merge_samples:
        input:
            prompts=sample_prompts,
            samples=expand(f"{RUN}/shards/{{shard}}.samples.jsonl", shard=range(SHARDS), allow_missing=True),
            stats=expand(f"{RUN}/shards/{{shard}}.samples.stats.json", shard=range(SHARDS), allow_missing=True),
        output:
            samples=f"{RUN}/samples.jsonl",
            stats=f"{RUN}/samples.stats.json",
        resources:
            mem_mb=1000,
        benchmark:
            f"{R}/benchmarks/merge_samples/{{rep}}{{algo}}_r{{round}}.tsv"
        log:
            f"{R}/logs/sample/{{rep}}{{algo}}_r{{round}}_merge.log",
        shell:
            "gamealign merge-samples --prompts {input.prompts} --shards {input.samples} --shard-stats {input.stats} "
            "--out {output.samples} --stats {output.stats} > {log} 2>&1"


rule offline_data:
    output:
        prompts=f"{OFFLINE}/prompts.jsonl",
        samples=f"{OFFLINE}/samples.jsonl",
        sample_stats=f"{OFFLINE}/samples.stats.json",
        prefs=f"{OFFLINE}/prefs.parquet",
        pref_stats=f"{OFFLINE}/prefs.stats.json",
    params:
        offline=jq(config["offline_data"]),
        out_dir=OFFLINE,
    resources:
        mem_mb=2000,
    benchmark:
        f"{R}/benchmarks/offline_data/offline_data.tsv"
    log:
        f"{R}/logs/offline_data.log",
    shell:
        "gamealign offline-data --params {params.offline:q} --out-dir {params.out_dir} > {log} 2>&1"
