#!/usr/bin/env bash
# Run the training-step benchmark on a GPU machine that has torch + transformers but no internet.
# Expects: /tmp/part_aa and .gpu/b/part_ab (the SmolLM2 GGUF in two parts, see shared/gpu/README.md)
# and .gpu/wheels/ (pure-Python wheels: trl, datasets, gguf and their small deps). Writes to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/smol "$OUT"
cat /tmp/part_aa .gpu/b/part_ab > /tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf
python3 -m pip install -q --no-index --no-deps --target /tmp/pylib .gpu/wheels/*.whl
export PYTHONPATH="$PWD/src:/tmp/pylib" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
python3 - <<'PY'
from gamealign.models import prepare_sft
prepare_sft({"source": "gguf", "path": "/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf", "trust_remote_code": False}, "/tmp/sft")
PY
# each benchmark under its own time limit, so that one that hangs (a compile, a CUDA-graph capture)
# still leaves the other's results in $OUT within the device tool's 10-minute command
timeout 330 python3 bench/train_step.py --model /tmp/sft --pairs 32 --seq-len 512 --prompt-len 128 --steps 10 --warmup 3 \
  --impl trl trl-pre ours ours-mb ours-gc ours-compile ours-compile-mb naive --out "$OUT/train_step.json" 2>&1 | grep -v -E "it/s\]|examples/s\]|Warning" | tee "$OUT/train_step.txt"
timeout 180 python3 bench/sampler.py --model /tmp/sft --prompts 256 --k 4 --batch-size 256 --max-new-tokens 128 \
  --out "$OUT/sampler.json" 2>&1 | grep -v -E "it/s\]|seq/s\]|Warning" | tee "$OUT/sampler.txt"
