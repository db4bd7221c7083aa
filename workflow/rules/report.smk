def report_entries():
    entries = [f"sft::0::{R}/eval/sft/heldout_winrate.json"]
    for a in ALGOS:
        for r in range(1, ROUNDS + 1):
            entries.append(f"{a}::{r}::{R}/eval/{a}-r{r}/heldout_winrate.json::{model_dir(a, r)}/manifest.json")
    return " ".join(f"--entry {e}" for e in entries)


rule report:
    input:
        scores=expand(f"{R}/eval/{{model_id}}/heldout_winrate.json", model_id=all_model_ids()),
        models=[model_dir(a, r) for a in ALGOS for r in range(1, ROUNDS + 1)],
    output:
        md=f"{R}/report/comparison.md",
        csv=f"{R}/report/comparison.csv",
    params:
        entries=report_entries(),
        config=jq(config),
        out_dir=f"{R}/report",
    resources:
        mem_mb=1000,
    log:
        f"{R}/logs/report.log",
    shell:
        "gamealign report {params.entries} --config {params.config:q} --out-dir {params.out_dir} > {log} 2>&1"
