rule prepare_sft:
    output:
        directory(SFT),
    params:
        model=jq(config["model"]),
        seed=derive_seed(SEED, "prepare_sft"),
    threads: THREADS
    resources:
        mem_mb=4000,
        gpu=GPUS,
    benchmark:
        f"{R}/benchmarks/prepare_sft/sft.tsv"
    log:
        f"{R}/logs/prepare_sft.log",
    shell:
        "gamealign prepare-sft --params {params.model:q} --out {output} --seed {params.seed} "
        "--threads {threads} > {log} 2>&1"
