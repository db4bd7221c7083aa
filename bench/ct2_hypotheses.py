"""CTranslate2 generation in a fresh process: a prompt's K samples as K items vs as K hypotheses of one prefill,
with ctranslate2 imported before torch (default) or after it (--torch-first).

  items  every prompt × K item, sorted by prompt length, 64 items a `generate_batch` call
  hyp    the prompts sorted by length, 16 a call, `num_hypotheses=4` (what `sampling_ct2.generate_ct2` does)

Converts the checkpoint (float32), warms up on 8 new tokens, then times three full runs (seeds 0, 1, 2) and prints
their tokens/s. Run each mode in its own process; bench/README.md quotes the numbers.

Usage: python bench/ct2_hypotheses.py --model results/sft/model --mode hyp [--torch-first]
"""

import argparse
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--mode", choices=["items", "hyp"], required=True)
ap.add_argument("--torch-first", action="store_true")
a = ap.parse_args()
if a.torch_first:
    import torch  # noqa: F401
import tempfile  # noqa: E402
import time  # noqa: E402

import ctranslate2  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from gamealign.prompts import builtin_prompts  # noqa: E402
from gamealign.sampling import chat_texts  # noqa: E402
from gamealign.sampling_ct2 import convert  # noqa: E402

tmp = tempfile.mkdtemp(prefix="ct2-hyp-")
convert(a.model, tmp)
tok = AutoTokenizer.from_pretrained(a.model)
ids = [tok(t, add_special_tokens=False).input_ids for t in chat_texts(tok, builtin_prompts(32, seed=0))]
order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
eos = tok.eos_token_id
if a.mode == "items":
    items = [tok.convert_ids_to_tokens(ids[pi]) for pi in order for _ in range(4)]
    chunks = [(items[s:s + 64], {}) for s in range(0, len(items), 64)]
else:
    prompts = [tok.convert_ids_to_tokens(ids[pi]) for pi in order]
    chunks = [(prompts[s:s + 16], {"num_hypotheses": 4}) for s in range(0, len(prompts), 16)]
gen = ctranslate2.Generator(tmp, device="cpu", compute_type="float32", intra_threads=2, inter_threads=1)
opts = dict(sampling_topk=0, sampling_topp=1.0, sampling_temperature=1.0, include_prompt_in_result=False,
            end_token=[eos], return_end_token=True)


def run(max_length):
    t0, n = time.time(), 0
    for batch, kw in chunks:
        for r in gen.generate_batch(batch, max_length=max_length, max_batch_size=len(batch), **opts, **kw):
            for seq in r.sequences_ids:
                n += seq.index(eos) if eos in seq else len(seq)
    return n / (time.time() - t0)


ctranslate2.set_random_seed(100)
run(8)
rates = []
for seed in range(3):
    ctranslate2.set_random_seed(seed)
    rates.append(round(run(64)))
print(f"{a.mode}{' torch-first' if a.torch_first else ''}: tokens/s {rates}", file=sys.stdout)
