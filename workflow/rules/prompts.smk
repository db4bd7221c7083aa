rule prompts:
    output:
        train=expand(f"{R}/prompts/train_r{{r}}.jsonl", r=range(1, ROUNDS + 1)),
        heldout=f"{R}/prompts/eval_heldout.jsonl",
        # prompts.n_validation: tuning prompts (never the held-out ones), for bench/ and the user's sweeps
        **({"validation": f"{R}/prompts/validation.jsonl"} if config["prompts"]["n_validation"] else {}),
    params:
        prompts=jq(config["prompts"]),
        rounds=ROUNDS,
        seed=derive_seed(SEED, "prompts"),
        out_dir=f"{R}/prompts",
    resources:
        mem_mb=1000,
    benchmark:
        f"{R}/benchmarks/prompts/prompts.tsv"
    log:
        f"{R}/logs/prompts.log",
    shell:
        "gamealign prompts --params {params.prompts:q} --rounds {params.rounds} --seed {params.seed} "
        "--out-dir {params.out_dir} > {log} 2>&1"
