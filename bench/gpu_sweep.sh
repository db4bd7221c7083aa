#!/usr/bin/env bash
# The learning-rate sweep of the GPU study (bench/lr_sweep.py: round 1 of each algorithm, scored on the
# study's validation prompts under its evaluation judge, never on the held-out ones), on the GPU machine.
# configs/gpu-smollm2.yaml's lr is the papers' 7B value and was never tuned for SmolLM2: run this after
# bench/gpu_round.sh (whose Snakemake run leaves the SFT model in $WORK/results/sft/model) and before the study.
#   bash bench/gpu_sweep.sh                          # on the GPU machine; $OUT/lr_sweep.json
#   ALGOS="dpo inpo" LRS="5e-7 5e-6" bash bench/gpu_sweep.sh
#   GPU_KIT=0 PYTHON=.venv/bin/python CONFIG=<a config with prompts.n_validation> SFT=<sft folder> bash bench/gpu_sweep.sh
set -uo pipefail
source bench/gpu_setup.sh
gpu_require gpu_sweep round wheels eval || exit 2
# the SFT model of the study (bench/gpu_study.sh) or of a round (bench/gpu_round.sh), whichever ran
OUT=${OUT:-/tmp/out} CONFIG=${CONFIG:-configs/gpu-smollm2.yaml} SFT=${SFT:-$(gpu_sft)}
mkdir -p "$OUT"
[ -f "$SFT/config.json" ] || { echo "gpu_sweep: no SFT model in $SFT (run bench/gpu_study.sh or bench/gpu_round.sh first, or set SFT)" >&2; exit 2; }
start=$(date +%s)
# shellcheck disable=SC2086  # ALGOS and LRS are word lists
"$PY" bench/lr_sweep.py --config "$CONFIG" --sft "$SFT" --work "${SWEEP_WORK:-/tmp/sweep}" \
  --algos ${ALGOS:-dpo inpo wind spac} --lrs ${LRS:-5e-7 2e-6 1e-5} --out "$OUT/lr_sweep.json" > "$OUT/lr_sweep.txt" 2>&1
rc=$?
grep '^{"algorithm"' "$OUT/lr_sweep.txt"; tail -3 "$OUT/lr_sweep.txt"
echo "lr sweep of $CONFIG: exit $rc, $(( $(date +%s) - start )) s wall" | tee -a "$OUT/lr_sweep.txt"
exit $rc
