"""CTranslate2 generation alone, under the settings that matter for the `ct2` backend, in a fresh process.

Converts the checkpoint once (float32), then times `Generator.generate_batch` on the same work items as
`gamealign.sampling_ct2` (every prompt × K, sorted by prompt length) in batches of --batch-size, for: top-p 1
(the bench default), all items in one call, top-k 50, top-p 0.95 with temperature 0.8 (nucleus sampling sorts
the vocabulary each step), and CTranslate2's own thread count (intra_threads 0) instead of --threads.

Usage: python bench/ct2_settings.py --model results/sft/model --prompts 32 --k 4 --batch-size 64 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import ctranslate2
    from transformers import AutoTokenizer

    from gamealign.prompts import builtin_prompts
    from gamealign.sampling import chat_texts
    from gamealign.sampling_ct2 import convert

    tok = AutoTokenizer.from_pretrained(a.model)
    texts = chat_texts(tok, builtin_prompts(a.prompts, seed=a.seed))
    ids = [tok(t, add_special_tokens=False).input_ids for t in texts]
    items = sorted(((pi, k) for pi in range(len(ids)) for k in range(a.k)), key=lambda it: (len(ids[it[0]]), it))
    tokens = [tok.convert_ids_to_tokens(ids[pi]) for pi, _ in items]
    eos = tok.eos_token_id
    results = {"prompts": a.prompts, "k": a.k, "batch_size": a.batch_size, "max_new_tokens": a.max_new_tokens}

    def run(gen, chunk, **sampling):
        ctranslate2.set_random_seed(a.seed)
        t0, n = time.time(), 0
        for s in range(0, len(tokens), chunk):
            for r in gen.generate_batch(tokens[s:s + chunk], max_length=a.max_new_tokens, include_prompt_in_result=False,
                                        end_token=[eos], return_end_token=True, max_batch_size=a.batch_size, **sampling):
                seq = r.sequences_ids[0]
                n += seq.index(eos) if eos in seq else len(seq)
        dt = time.time() - t0
        return {"tokens": n, "seconds": round(dt, 2), "tokens_per_s": round(n / dt, 1)}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        path = convert(a.model, tmp)
        results["convert_s"] = round(time.time() - t0, 2)
        gen = ctranslate2.Generator(str(path), device="cpu", compute_type="float32", intra_threads=a.threads)
        full = dict(sampling_topk=0, sampling_topp=1.0, sampling_temperature=1.0)
        results["top_p_1"] = run(gen, a.batch_size, **full)
        results["one_call"] = run(gen, len(tokens), **full)
        results["top_k_50"] = run(gen, a.batch_size, sampling_topk=50, sampling_temperature=1.0)
        results["top_p_0.95_temp_0.8"] = run(gen, a.batch_size, sampling_topk=0, sampling_topp=0.95,
                                             sampling_temperature=0.8)
        del gen
        gen = ctranslate2.Generator(str(path), device="cpu", compute_type="float32", intra_threads=0)
        results["intra_threads_0"] = run(gen, a.batch_size, **full)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
