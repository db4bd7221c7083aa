def score_file(model_id, bench):
    name = "heldout_winrate" if bench == "heldout" else bench
    return f"{R}/eval/{model_id}/{name}.json"


def scored_model_ids(bench):
    return leaderboard_model_ids() if bench == "open_llm" else all_model_ids()


def report_scores():
    """(model_id, benchmark, score file) of every score the report reads."""
    return [(m, b, score_file(m, b)) for b in BENCHES for m in scored_model_ids(b)]


def report_args():
    """--model SEED::ALGO::ROUND::MANIFEST and --score SEED::ALGO::ROUND::BENCH::PATH (SEED empty: the shared SFT)."""
    trained = [(rep, a, r) for rep in REPS for a in ALGOS for r in range(1, ROUNDS + 1)]
    models = ["::sft::0::"] + [f"{rep_seed(rep)}::{a}::{r}::{model_dir(rep, a, r)}/manifest.json" for rep, a, r in trained]
    scores = []
    for m, bench, path in report_scores():
        rep, algo, rnd = split_model_id(m)
        scores.append(f"{rep_seed(rep) if m != 'sft' else ''}::{algo}::{rnd}::{bench}::{path}")
    games = [f"--game {game_dir(fam)}" for fam in GAME_FAMILIES]
    return " ".join([f"--model {m}" for m in models] + [f"--score {s}" for s in scores] + games)


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
        args=report_args(),
        config=jq(without_runtime(config)),   # what the report records and hashes: no runtime knobs
        out_dir=f"{R}/report",
    resources:
        mem_mb=1000,
    benchmark:
        f"{R}/benchmarks/report/report.tsv"
    log:
        f"{R}/logs/report.log",
    shell:
        "gamealign report {params.args} --config {params.config:q} --out-dir {params.out_dir} > {log} 2>&1"
