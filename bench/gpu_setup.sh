#!/usr/bin/env bash
# Set up the GPU machine (no registry, no snakemake; ../shared/gpu/README.md) for bench/gpu_round.sh and
# bench/gpu_bench.sh, from what bench/gpu_kit.sh built and the device tool carried. Run it alone on the
# first transfer; the other scripts source it. Idempotent: each call does only what is still missing.
#   - keeps part_aa in /tmp (a carried folder need not outlive its call); joins the GGUF once both parts came
#   - installs each carried wheel folder (.gpu/round, .gpu/wheels) into /tmp/pylib/<folder>, no dependencies
#   - puts src/ and those folders on PYTHONPATH, and `gamealign` (python -m gamealign) on PATH for the rules
# GPU_KIT=0 skips the first two (a machine that has the project installed, e.g. to try the scripts on CPU).
PY=${PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac   # absolute: rules run elsewhere
GGUF=/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /tmp/bin
if [ "${GPU_KIT:-1}" != 0 ]; then
  mkdir -p /tmp/smol /tmp/pylib
  [ -f .gpu/a/part_aa ] && [ ! -f /tmp/part_aa ] && cp .gpu/a/part_aa /tmp/part_aa
  if [ ! -f "$GGUF" ] && [ -f /tmp/part_aa ] && [ -f .gpu/b/part_ab ]; then
    cat /tmp/part_aa .gpu/b/part_ab > "$GGUF.part" && mv "$GGUF.part" "$GGUF"
  fi
  for d in round wheels; do
    if [ -d ".gpu/$d" ] && [ ! -f "/tmp/pylib/$d.done" ]; then
      "$PY" -m pip install -q --no-index --no-deps --target "/tmp/pylib/$d" .gpu/$d/*.whl && touch "/tmp/pylib/$d.done"
    fi
  done
  export PYTHONPATH="$PWD/src:/tmp/pylib/wheels:/tmp/pylib/round${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
printf '#!/bin/sh\nexec %s -m gamealign "$@"\n' "$PY" > /tmp/bin/gamealign && chmod +x /tmp/bin/gamealign
export PATH="/tmp/bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "gpu_setup: GGUF $( [ -f "$GGUF" ] && echo ready || echo 'not yet joined'); wheels: $(ls /tmp/pylib 2>/dev/null | grep -c done) folder(s) installed"
