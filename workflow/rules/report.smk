def score_file(model_id, bench):
    name = "heldout_winrate" if bench == "heldout" else bench
    return f"{R}/eval/{model_id}/{name}.json"


def report_args():
    models, scores = ["sft::0"], []
    for a in ALGOS:
        for r in range(1, ROUNDS + 1):
            models.append(f"{a}::{r}::{model_dir(a, r)}/manifest.json")
    for bench in BENCHES:
        scores.append(f"sft::0::{bench}::{score_file('sft', bench)}")
        for a in ALGOS:
            for r in range(1, ROUNDS + 1):
                scores.append(f"{a}::{r}::{bench}::{score_file(f'{a}-r{r}', bench)}")
    return " ".join([f"--model {m}" for m in models] + [f"--score {s}" for s in scores])


rule report:
    input:
        scores=[score_file(m, b) for m in all_model_ids() for b in BENCHES],
        models=[model_dir(a, r) for a in ALGOS for r in range(1, ROUNDS + 1)],
    output:
        md=f"{R}/report/comparison.md",
        csv=f"{R}/report/comparison.csv",
    params:
        args=report_args(),
        config=jq(config),
        out_dir=f"{R}/report",
    resources:
        mem_mb=1000,
    log:
        f"{R}/logs/report.log",
    shell:
        "gamealign report {params.args} --config {params.config:q} --out-dir {params.out_dir} > {log} 2>&1"
