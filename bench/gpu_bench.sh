#!/usr/bin/env bash
# The training-step and sampler benchmarks on the GPU machine (torch + transformers, no internet), after
# bench/gpu_setup.sh's transfers (bench/README.md has the recipe): needs the joined SmolLM2 GGUF and the
# .gpu/wheels folder (trl, datasets, gguf, ...). Writes to $OUT.
set -uo pipefail
source bench/gpu_setup.sh
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
gpu_require gpu_bench wheels || exit 2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
# the SFT model a study or a round made already (the same GGUF, the same conversion), else one made here
if ! SFT=$(gpu_sft); then
  SFT=/tmp/sft
  [ -f $SFT/config.json ] || gamealign prepare-sft --params "{\"source\": \"gguf\", \"path\": \"$GGUF\"}" --out $SFT
fi
# each benchmark under its own time limit, so that one that hangs (a compile, a CUDA-graph capture)
# still leaves the other's results in $OUT within the device tool's 10-minute command
timeout 330 "$PY" bench/train_step.py --model "$SFT" --pairs 32 --seq-len 512 --prompt-len 128 --steps 10 --warmup 3 --variant-timeout 90 \
  --impl trl trl-pre ours ours-liger-lce ours-liger-lce-gc ours-liger-lce-gc-fadam naive --out "$OUT/train_step.json" 2>&1 | grep -v -E "it/s\]|examples/s\]|Warning" | tee "$OUT/train_step.txt"
timeout 240 "$PY" bench/sampler.py --model "$SFT" --prompts 256 --k 4 --batch-size 256 --max-new-tokens 128 --impl ours static plain \
  --out "$OUT/sampler.json" 2>&1 | grep -v -E "it/s\]|seq/s\]|Warning" | tee "$OUT/sampler.txt"
