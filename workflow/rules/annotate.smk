rule annotate:
    input:
        samples=f"{R}/runs/{{rep}}{{algo}}/r{{round}}/samples.jsonl",
        prompts=f"{R}/prompts/train_r{{round}}.jsonl",
    output:
        prefs=f"{R}/runs/{{rep}}{{algo}}/r{{round}}/prefs.parquet",
        stats=f"{R}/runs/{{rep}}{{algo}}/r{{round}}/prefs.stats.json",
    params:
        judge=jq(determining("judge")),
        cache=f"{R}/cache/judge.sqlite",
        truncated=config["sampling"]["truncated"],
        plans=lambda w: jq(annotation_plans(w.rep, w.algo, w.round)),
    resources:
        mem_mb=2000,
    benchmark:
        f"{R}/benchmarks/annotate/{{rep}}{{algo}}_r{{round}}.tsv"
    log:
        f"{R}/logs/annotate/{{rep}}{{algo}}_r{{round}}.log",
    shell:
        "gamealign annotate --prompts {input.prompts} --samples {input.samples} --out {output.prefs} "
        "--stats {output.stats} --judge {params.judge:q} --runtime {JUDGE_RUNTIME:q} --cache {params.cache} --truncated {params.truncated} "
        "--plans {params.plans:q} > {log} 2>&1"
