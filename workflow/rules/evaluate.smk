# Every model (SFT and each algorithm x round) answers the held-out prompts greedily; each answer
# is judged against the SFT model's answer to the same prompt.
rule eval_generate:
    input:
        model=lambda w: model_for_id(w.model_id),
        prompts=f"{R}/prompts/eval_heldout.jsonl",
    output:
        gens=f"{R}/eval/{{model_id}}/heldout_generations.jsonl",
        stats=f"{R}/eval/{{model_id}}/heldout_generations.stats.json",
    params:
        evaluation=jq(config["evaluation"]),
        seed=derive_seed(SEED, "eval_generate"),
        system=sys_prompt_arg(),
    threads: THREADS
    resources:
        mem_mb=4000,
    log:
        f"{R}/logs/eval/{{model_id}}_generate.log",
    shell:
        "gamealign sample --greedy --model {input.model} --prompts {input.prompts} --out {output.gens} "
        "--stats {output.stats} --params {params.evaluation:q} --seed {params.seed} {params.system} "
        "--threads {threads} > {log} 2>&1"


rule eval_winrate:
    input:
        candidate=f"{R}/eval/{{model_id}}/heldout_generations.jsonl",
        baseline=f"{R}/eval/sft/heldout_generations.jsonl",
        prompts=f"{R}/prompts/eval_heldout.jsonl",
    output:
        score=f"{R}/eval/{{model_id}}/heldout_winrate.json",
        judgments=f"{R}/eval/{{model_id}}/heldout_judgments.jsonl",
    params:
        judge=jq(config["judge"]),
        ci=config["evaluation"]["ci_level"],
        seed=derive_seed(SEED, "eval_winrate"),
        cache=f"{R}/cache/judge.sqlite",
    resources:
        mem_mb=1000,
    log:
        f"{R}/logs/eval/{{model_id}}_winrate.log",
    shell:
        "gamealign judge-eval --prompts {input.prompts} --candidate {input.candidate} "
        "--baseline {input.baseline} --judge {params.judge:q} --out {output.score} "
        "--judgments {output.judgments} --cache {params.cache} --ci-level {params.ci} "
        "--seed {params.seed} --model-id {wildcards.model_id} > {log} 2>&1"
