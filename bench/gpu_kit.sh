#!/usr/bin/env bash
# Build, on a CPU machine with PyPI, what the GPU machine lacks (it has no registry; see
# ../shared/gpu/README.md), as folders for device-tool transfers of < 64 MiB each (the working tree,
# ~3 MB, travels with every one; the sizes are checked at the end):
#   call 1: .gpu/a/part_aa + .gpu/wheels/  first half of the SmolLM2 GGUF + trl, liger-kernel, datasets, gguf, jsonschema (~54 MB)
#   call 2: .gpu/b/part_ab + .gpu/round/   second half + snakemake and its deps but its four largest (~52 MB)
#   call 3: .gpu/eval/                     lm-eval and alpaca-eval with what the image lacks of their deps, setuptools<81
#                                          (alpaca_eval needs pkg_resources), ../shared/data as one .tar.xz, and
#                                          snakemake's sqlalchemy, greenlet, pydantic, pydantic-core (~29 MB)
#   .gpu/cfg/                              SmolLM2's config and tokenizer (~4 MB), for bench/gpu_train.sh's stand-in
# All wheels are for CPython 3.12 on manylinux x86_64 (the GPU image's Python). pulp, snakemake's ILP
# scheduler (16 MB), is left out: bench/gpu_round.sh runs snakemake with --scheduler greedy.
# Run from the project root:  bash bench/gpu_kit.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PIP=${PIP:-.venv/bin/pip}
PLATFORM=(--python-version 3.12 --implementation cp --platform manylinux2014_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all:)

mkdir -p "$(git rev-parse --git-dir)/info"   # split_smollm2.sh appends to .git/info/exclude; a fresh clone may lack the folder
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
rm -rf .gpu/round .gpu/eval && mkdir -p .gpu/round
"$PIP" download -q -d .gpu/round --find-links "$built" "${PLATFORM[@]}" snakemake==9.27.1
rm -f .gpu/round/pulp-*.whl
for w in .gpu/wheels/*.whl; do rm -f ".gpu/round/$(basename "$w")"; done   # carried in .gpu/wheels already
# snakemake's four largest wheels (sqlalchemy, greenlet, pydantic, pydantic-core: 7 MB) ride with call 3, which has
# room: calls 1 and 2 each carry half the GGUF (~48 MB), and the working tree that travels with every call grows with
# docs/ (call 2 was 63.4 MiB of 64 at 6 MB of tree). Every folder is installed with --no-deps and all are on
# PYTHONPATH, so where a wheel travels does not matter once the calls have come: snakemake runs after call 3
# (gpu_round.sh and gpu_sweep.sh require .gpu/eval too).
mkdir -p .gpu/eval
mv .gpu/round/sqlalchemy-*.whl .gpu/round/greenlet-*.whl .gpu/round/pydantic-*.whl .gpu/round/pydantic_core-*.whl .gpu/eval/

# the evaluation stack (the study's alpaca_eval / arena_hard / open_llm benchmarks): the packages of lm-eval's and
# alpaca-eval's dependency closure for CPython 3.12 that neither the image (KINDS.md's list) nor .gpu/round has, pinned;
# rouge-score, sqlitedict and word2number have only source distributions, so they are built into wheels here first
"$PIP" download -q --no-deps -d "$built" --no-binary=:all: rouge-score==0.1.2 sqlitedict==2.1.0 word2number==1.1
"$PIP" wheel -q --no-deps -w .gpu/eval "$built"/rouge_score-*.tar.gz "$built"/sqlitedict-*.tar.gz "$built"/word2number-*.zip
"$PIP" download -q --no-deps -d .gpu/eval "${PLATFORM[@]}" \
  lm-eval==0.4.13 alpaca-eval==0.6.6 setuptools==80.10.2 evaluate==0.4.6 nltk==3.10.4 openai==3.57.0 jiter==0.19.0 \
  httpx2==2.16.2 httpcore2==2.16.2 sniffio==1.3.1 truststore==0.10.5 chardet==6.0.0.post1 fire==0.7.1 termcolor==3.3.0 \
  python-dotenv==1.2.4 pytz==2026.6 more-itertools==11.2.1 pytablewriter==1.2.1 dataproperty==1.1.1 \
  mbstrdecoder==1.1.5 pathvalidate==3.3.1 tabledata==1.3.5 tcolorpy==0.1.7 typepy==1.3.5 defusedxml==0.7.1
tar -cJf .gpu/eval/shared-data.tar.xz -C .. shared/data

for d in a round b wheels eval cfg; do printf '%-13s %s\n' ".gpu/$d" "$(du -sh --apparent-size .gpu/$d | cut -f1)"; done
tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
for call in "a wheels" "b round" "eval"; do
  bytes=$(( tree + $(cd .gpu && du -cb --apparent-size $call | tail -1 | cut -f1) ))
  awk -v c="$call" -v b="$bytes" 'BEGIN {printf "call carrying %-10s + the working tree: %5.1f MiB of 64\n", c, b / 1048576}'
  [ "$bytes" -lt $(( 63 * 1048576 )) ] || { echo "gpu_kit: that call is over the device tool's 64 MiB (less 1 MiB of margin)" >&2; exit 1; }
done
echo "transfers: 1 .gpu/a + .gpu/wheels, 2 .gpu/b + .gpu/round, 3 .gpu/eval (bench/README.md)"
