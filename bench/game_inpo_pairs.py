"""INPO's pair choice on the preference-game track: tournament (the default) vs `pairs: best_worst`, same games.

Runs the default config's `game` section for INPO alone on one family (10 seeded games), once with each pair
choice, optionally with MULT × the comparisons per iteration, and prints the median final duality gap, how many
games settled below the threshold, and the median judge calls to settle (inf: not reached). README "Preference
games" quotes its numbers.

Usage: python bench/game_inpo_pairs.py cyclic [MULT]
"""
import sys
import numpy as np
import pandas as pd
import torch
torch.set_num_threads(1)
from gamealign.config import load_config
from gamealign.games import run_family, threshold_table
cfg = load_config("config.yaml", check_paths=False)["game"]
cfg = {k: v for k, v in cfg.items() if k not in ("enabled", "families")}
base = cfg["algorithms"]["inpo"]
variants = {"tournament": dict(base), "best_worst": {**base, "pairs": "best_worst"}}
mult = int(sys.argv[2]) if len(sys.argv) > 2 else 1
for name, hp in variants.items():
    c = {**cfg, "algorithms": {"inpo": hp}, "groups_per_context": cfg["groups_per_context"] * mult}
    _, runs = run_family(c, sys.argv[1], seed=0, progress=False)
    row = threshold_table(pd.DataFrame(runs)).iloc[0]   # the report's settled count and median (never settled: inf)
    print(sys.argv[1], f"x{mult}", name, "final gap median", round(float(np.median([r["final_gap"] for r in runs])), 4),
          "settled", row["settled"], "judge calls median", row["judge_calls_median"], flush=True)
