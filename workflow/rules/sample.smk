# Round r of an online algorithm samples from its round r-1 model; round 1 is sampled once from
# the SFT model into runs/{rep}shared/r1 and shared by every algorithm (of that replicate).
rule sample:
    input:
        model=lambda w: model_dir(w.rep, w.algo, int(w.round) - 1),
        prompts=lambda w: f"{R}/prompts/train_r{sample_prompt_round(w.algo, w.round)}.jsonl",
    output:
        samples=f"{R}/runs/{{rep}}{{algo}}/r{{round}}/samples.jsonl",
        stats=f"{R}/runs/{{rep}}{{algo}}/r{{round}}/samples.stats.json",
    params:
        # not `truncated`: annotation and training read it, sampling does not
        sampling=jq(only(config["sampling"], "k", "temperature", "top_p", "max_new_tokens", "batch_size")),
        seed=lambda w: derive_seed(rep_seed(w.rep), "sample", w.algo, w.round),
        system=sys_prompt_arg(),
        backend=backend_args(),
    threads: THREADS
    resources:
        mem_mb=4000,
        gpu=GPUS,
    benchmark:
        f"{R}/benchmarks/sample/{{rep}}{{algo}}_r{{round}}.tsv"
    log:
        f"{R}/logs/sample/{{rep}}{{algo}}_r{{round}}.log",
    shell:
        "gamealign sample --model {input.model} --prompts {input.prompts} --out {output.samples} "
        "--stats {output.stats} --params {params.sampling:q} --seed {params.seed} {params.system} "
        "{params.backend} --gpu-memory-utilization {GPU_MEMORY} {TRUST} --threads {threads} > {log} 2>&1"
