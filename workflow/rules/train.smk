def train_inputs(w):
    d, dr = data_dir(w.algo, w.round), data_round(w.algo, w.round)
    inputs = {
        "init": model_dir(w.algo, int(w.round) - 1),
        "ref": SFT,
        "prompts": f"{R}/prompts/train_r{dr}.jsonl",
        "samples": f"{d}/samples.jsonl",
        "sample_stats": f"{d}/samples.stats.json",
    }
    if REGISTRY[w.algo].needs_annotations:
        inputs["prefs"] = f"{d}/prefs.parquet"
        inputs["pref_stats"] = f"{d}/prefs.stats.json"
    return inputs


def train_args(w, input):
    """Optional CLI arguments: annotations, and which stats count as new data this round."""
    args = []
    if "prefs" in input.keys():
        args.append(f"--prefs {input.prefs}")
    if new_data(w.algo, w.round):
        args.append(f"--sample-stats {input.sample_stats}")
        if "pref_stats" in input.keys():
            args.append(f"--pref-stats {input.pref_stats}")
    if int(w.round) > 1:
        args.append(f"--prev-manifest {input.init}/manifest.json")
    return " ".join(args)


rule train:
    input:
        unpack(train_inputs),
    output:
        model=directory(f"{R}/runs/{{algo}}/r{{round}}/model"),
    params:
        hparams=lambda w: jq(config["algorithms"][w.algo]),
        train=jq(config["train"]),
        seed=lambda w: derive_seed(SEED, "train", w.algo, w.round),
        extra=train_args,
        system=sys_prompt_arg(),
    threads: 2
    resources:
        mem_mb=8000,
    log:
        f"{R}/logs/train/{{algo}}_r{{round}}.log",
    shell:
        "gamealign train --algorithm {wildcards.algo} --hparams {params.hparams:q} --train {params.train:q} "
        "--init-model {input.init} --ref-model {input.ref} --prompts {input.prompts} "
        "--samples {input.samples} {params.extra} --out {output.model} --seed {params.seed} "
        "{params.system} --threads {threads} > {log} 2>&1"
