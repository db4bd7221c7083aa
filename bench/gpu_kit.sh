#!/usr/bin/env bash
# Build, on a CPU machine with PyPI, what the GPU machine lacks (it has no registry; see
# ../shared/gpu/README.md), as three folders for three device-tool transfers of < 64 MiB each:
#   .gpu/a/part_aa + .gpu/round/   first half of the SmolLM2 GGUF + snakemake and its deps (~62 MB)
#   .gpu/b/part_ab + .gpu/wheels/  second half + trl, liger-kernel, datasets, gguf, jsonschema, small deps (~52 MB)
#   .gpu/cfg/                      SmolLM2's config and tokenizer (~4 MB), for bench/gpu_train.sh's stand-in
# All wheels are for CPython 3.12 on manylinux x86_64 (the GPU image's Python). pulp, snakemake's ILP
# scheduler (16 MB), is left out: bench/gpu_round.sh runs snakemake with --scheduler greedy.
# Run from the project root:  bash bench/gpu_kit.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PIP=${PIP:-.venv/bin/pip}
PLATFORM=(--python-version 3.12 --implementation cp --platform manylinux2014_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all:)

PATH="$PWD/.venv/bin:$PATH" bash ../shared/gpu/split_smollm2.sh

# SmolLM2's config and tokenizer alone (~4 MB), from the SFT checkpoint the study would make: bench/gpu_train.sh's
# random-init stand-in when only the first transfer has come (a step's time and memory do not depend on weights)
rm -rf .gpu/cfg && mkdir -p .gpu/cfg
sft=$(mktemp -d)
.venv/bin/gamealign prepare-sft --params '{"source": "smollm2_gguf"}' --out "$sft/m" > /dev/null
cp "$sft"/m/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja} .gpu/cfg/
rm -rf "$sft"

# bench + round: each pinned, without dependencies (the image has torch, transformers, numpy,
# pandas, pyarrow, pyyaml, tqdm, requests and huggingface-hub)
rm -rf .gpu/wheels && mkdir -p .gpu/wheels
"$PIP" download -q --no-deps -d .gpu/wheels "${PLATFORM[@]}" \
  trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 fsspec==2026.9.0 \
  gguf==0.19.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
  rpds-py==2026.9.1 attrs==26.1.0 liger-kernel==0.8.5

# snakemake with its whole dependency closure; connection_pool has only a source distribution,
# so it is built into a (pure-Python) wheel here first
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT
"$PIP" wheel -q --no-deps -w "$built" connection_pool==0.0.3
rm -rf .gpu/round && mkdir -p .gpu/round
"$PIP" download -q -d .gpu/round --find-links "$built" "${PLATFORM[@]}" snakemake==9.27.1
rm -f .gpu/round/pulp-*.whl
for w in .gpu/wheels/*.whl; do rm -f ".gpu/round/$(basename "$w")"; done   # carried in .gpu/wheels already

for d in a round b wheels cfg; do printf '%-13s %s\n' ".gpu/$d" "$(du -sh --apparent-size .gpu/$d | cut -f1)"; done
echo "transfer 1: .gpu/a + .gpu/round; transfer 2: .gpu/b + .gpu/wheels (see bench/README.md)"
