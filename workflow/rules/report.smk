rule report:
    input:
        scores=[s["path"] for s in study.report_index(config)["scores"]],
        models=[model_for_id(m) for m in study.model_ids(config)[1:]],
        games=[f"{d}/{name}.csv" for d in study.game_dirs(config) for name in ("curves", "runs")],
    output:
        md=f"{R}/report/comparison.md",
        csv=report(f"{R}/report/comparison.csv", caption="../report/tables.rst", category="Tables"),
        figures=report(directory(f"{R}/report/figures"), patterns=["{name}.png"], caption="../report/figures.rst",
                       category="Figures"),
    params:
        index=jq(study.report_index(config)),
        config=jq(without_runtime(config)),   # what the report records and hashes: no runtime knobs
        out_dir=f"{R}/report",
    resources:
        mem_mb=1000,
    benchmark:
        f"{R}/benchmarks/report/report.tsv"
    log:
        f"{R}/logs/report.log",
    shell:
        "gamealign report --index {params.index:q} --config {params.config:q} --out-dir {params.out_dir} > {log} 2>&1"
