# The preference-game track (config `game`, README "Preference games"): one job per game family, every
# algorithm × seed inside it. Its inputs are the config alone: no model, no data.
GAME = config["game"]


def game_dir(family):
    return f"{R}/game/{family}"


rule game:
    output:
        curves=f"{R}/game/{{family}}/curves.csv",
        runs=f"{R}/game/{{family}}/runs.csv",
    wildcard_constraints:
        family="bt|general|cyclic",
    params:
        # what determines the output: the section without the switches that only choose which jobs exist
        game=jq({k: v for k, v in GAME.items() if k not in ("enabled", "families")}),
        seed=SEED,
        out_dir=lambda w: game_dir(w.family),
    threads: 1
    resources:
        mem_mb=1000,
    benchmark:
        f"{R}/benchmarks/game/{{family}}.tsv"
    log:
        f"{R}/logs/game/{{family}}.log",
    shell:
        "gamealign game --family {wildcards.family} --params {params.game:q} --seed {params.seed} "
        "--out-dir {params.out_dir} > {log} 2>&1"
