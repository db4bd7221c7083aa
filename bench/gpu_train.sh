#!/usr/bin/env bash
# The training-step benchmark alone on the GPU machine, after bench/gpu_setup.sh (bench/README.md).
# With the joined SmolLM2 GGUF it benchmarks the real SFT checkpoint; without it (only the first transfer
# came), a random-init model of SmolLM2-135M's exact architecture built from .gpu/cfg (config + tokenizer,
# made by bench/gpu_kit.sh): a training step's time and memory do not depend on the weights' values.
#   IMPLS="ours trl ..." STEPS=10 WARMUP=3 TAG=name bash bench/gpu_train.sh   → $OUT/train_step_$TAG.{json,txt}
set -uo pipefail
source bench/gpu_setup.sh
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if [ -f "$GGUF" ]; then
  MODEL=/tmp/sft
  [ -f $MODEL/config.json ] || gamealign prepare-sft --params "{\"source\": \"gguf\", \"path\": \"$GGUF\"}" --out $MODEL
else
  MODEL=/tmp/sft-random
  [ -f $MODEL/config.json ] || "$PY" - <<'PY'
import shutil, torch
from transformers import AutoConfig, AutoModelForCausalLM
torch.manual_seed(0)
cfg = AutoConfig.from_pretrained(".gpu/cfg")
AutoModelForCausalLM.from_config(cfg).save_pretrained("/tmp/sft-random")
for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
    shutil.copy(f".gpu/cfg/{f}", "/tmp/sft-random/")
PY
fi
TAG=${TAG:-run}
echo "gpu_train: model $MODEL; $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)" | tee "$OUT/train_step_$TAG.txt"
"$PY" bench/train_step.py --model $MODEL --pairs 32 --seq-len 512 --prompt-len 128 --steps "${STEPS:-10}" \
  --warmup "${WARMUP:-3}" --variant-timeout "${VARIANT_TIMEOUT:-240}" --impl ${IMPLS:-trl trl-pre ours} \
  --out "$OUT/train_step_$TAG.json" 2>&1 | grep -v -E "it/s\]|examples/s\]|Warning" | tee -a "$OUT/train_step_$TAG.txt"
