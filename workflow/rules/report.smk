def score_file(model_id, bench):
    return f"{R}/eval/{model_id}/{BENCHMARKS[bench].score_file}"


def report_scores():
    """(model_id, benchmark, score file) of every score the report reads."""
    return [(m, b, score_file(m, b)) for b in BENCHES for m in benchmark_model_ids(b)]


def report_index():
    """What the report reads (`gamealign report --index`): every model's manifest and every score file, by seed,
    algorithm and round (seed and manifest None for the shared SFT model), and the game track's folders."""
    models = [{"seed": None, "algorithm": "sft", "round": 0, "manifest": None}]
    models += [{"seed": rep_seed(rep), "algorithm": a, "round": r, "manifest": f"{model_dir(rep, a, r)}/manifest.json"}
               for rep in REPS for a in ALGOS for r in range(1, ROUNDS + 1)]
    scores = []
    for m, bench, path in report_scores():
        rep, algo, rnd = split_model_id(m)
        scores.append({"seed": None if m == "sft" else rep_seed(rep), "algorithm": algo, "round": rnd,
                       "benchmark": bench, "path": path})
    return {"models": models, "scores": scores, "games": [game_dir(fam) for fam in GAME_FAMILIES]}


rule report:
    input:
        scores=[path for _, _, path in report_scores()],
        models=[model_dir(rep, a, r) for rep in REPS for a in ALGOS for r in range(1, ROUNDS + 1)],
        games=[f"{game_dir(fam)}/{name}.csv" for fam in GAME_FAMILIES for name in ("curves", "runs")],
    output:
        md=f"{R}/report/comparison.md",
        csv=report(f"{R}/report/comparison.csv", caption="../report/tables.rst", category="Tables"),
        figures=report(directory(f"{R}/report/figures"), patterns=["{name}.png"], caption="../report/figures.rst",
                       category="Figures"),
    params:
        index=jq(report_index()),
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
