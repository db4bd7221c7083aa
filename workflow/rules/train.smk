def train_inputs(w):
    d = data_dir(w.rep, w.algo, w.round)
    inputs = {
        "init": model_dir(w.rep, w.algo, int(w.round) - 1),
        "ref": SFT,
        "prompts": data_prompts(w.algo, w.round),
        "samples": f"{d}/samples.jsonl",
        "prefs": f"{d}/prefs.parquet",
    }
    if self_play(w.algo):
        inputs["selfplay"] = selfplay_samples(w.rep, w.algo, w.round)
    return inputs


def new_stats(w):
    """Stats files of the data that is new to this algorithm in this round (for the sample/judge counts)."""
    r = int(w.round)
    if from_dataset(w.algo):   # the dataset's answers and labels cost nothing; SPAC's self-play samples do
        return ([f"{R}/runs/{w.rep}{w.algo}/r{r}/samples.stats.json"] if self_play(w.algo) else []), []
    if r == 1 or online(w.algo):
        d = data_dir(w.rep, w.algo, r)
        return [f"{d}/samples.stats.json"], [f"{d}/prefs.stats.json"]
    if self_play(w.algo):
        return [f"{R}/runs/{w.rep}{w.algo}/r{r}/samples.stats.json"], []
    return [], []


def train_args(w, input):
    """Optional CLI arguments: self-play samples, new-data stats, the previous round's manifest."""
    samples, prefs = new_stats(w)
    args = [f"--sample-stats {' '.join(samples)}" if samples else "",
            f"--pref-stats {' '.join(prefs)}" if prefs else ""]
    if "selfplay" in input.keys():
        args.append(f"--selfplay {input.selfplay}")
    if int(w.round) > 1:
        args.append(f"--prev-manifest {input.init}/manifest.json")
    return " ".join(a for a in args if a)


rule train:
    input:
        unpack(train_inputs),
        stats=lambda w: sum(new_stats(w), []),
    output:
        model=directory(f"{R}/runs/{{rep}}{{algo}}/r{{round}}/model"),
    params:
        hparams=lambda w: jq(config["algorithms"][w.algo]),
        train=jq(determining("train")),
        seed=lambda w: derive_seed(rep_seed(w.rep), "train", w.algo, w.round),
        plan_seed=lambda w: plan_seed(w.rep, w.algo, w.round),
        truncated=config["sampling"]["truncated"],
        extra=train_args,
        system=sys_prompt_arg(),
        launcher=train_launcher(),
    threads: THREADS
    resources:
        mem_mb=8000,
        gpu=TRAIN_GPUS,
    benchmark:
        f"{R}/benchmarks/train/{{rep}}{{algo}}_r{{round}}.tsv"
    log:
        f"{R}/logs/train/{{rep}}{{algo}}_r{{round}}.log",
    shell:
        "{params.launcher} train --algorithm {wildcards.algo} --hparams {params.hparams:q} --train {params.train:q} "
        "--runtime {TRAIN_RUNTIME:q} "
        "--init-model {input.init} --ref-model {input.ref} --prompts {input.prompts} "
        "--samples {input.samples} --prefs {input.prefs} --truncated {params.truncated} --plan-seed {params.plan_seed} "
        "{params.extra} --out {output.model} --seed {params.seed} "
        "{params.system} {TRUST} --run-name {wildcards.rep}{wildcards.algo}-r{wildcards.round} "
        "--tracking-dir {TRACKING} --threads {threads} > {log} 2>&1"
