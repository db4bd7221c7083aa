"""Sampler throughput: our HF sampler vs plain `model.generate` at the same batch size (and vLLM if usable).

  ours     gamealign.sampling.generate: all K×prompts work items sorted by prompt length, left-padded
           batches of --batch-size, generation stops when every sequence in a batch has ended
  plain    model.generate over the prompts in their given order, one prompt's K samples per call
           batched up to --batch-size (num_return_sequences), no length sorting
  continuous  gamealign.sampling.generate_continuous (sampling.backend hf-continuous): transformers'
           continuous batching, at most --batch-size sequences decoding at once; its wall time
           includes the CUDA-graph warm-up that every sampling job pays
  ct2      gamealign.sampling_ct2.generate_ct2 (sampling.backend ct2, the CPU default): CTranslate2, float32,
           the same work items and batches as ours; its wall time includes converting the checkpoint
           (`convert_s`), which every sampling job pays
  vllm     gamealign.sampling_vllm.generate_vllm (only where vLLM and a GPU are usable)

Prints new tokens/s of each and the ratios, measured in one run on the same model and prompts.
The prompts mix short and long instructions (the built-in generator), as a study's do.

Usage: python bench/sampler.py --model results/sft/model --prompts 64 --k 4 --batch-size 64 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def plain_generate(model, tokenizer, texts, k, batch_size, max_new_tokens, seed):
    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    per_call = max(1, batch_size // k)
    new_tokens = 0
    with torch.inference_mode():
        for s in range(0, len(texts), per_call):
            enc = tokenizer(texts[s:s + per_call], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(model.device)
            out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                 num_return_sequences=k, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            gen = out[:, enc.input_ids.shape[1]:]
            ended = (gen == tokenizer.eos_token_id).int()
            first = torch.where(ended.any(1), ended.argmax(1), torch.full_like(ended[:, 0], gen.shape[1]))
            new_tokens += int(first.sum())
    return new_tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--impl", nargs="+", default=["ours", "plain", "continuous", "ct2", "vllm"])
    ap.add_argument("--out")
    a = ap.parse_args()

    from gamealign.models import load_model
    from gamealign.prompts import builtin_prompts
    from gamealign.sampling import chat_texts, generate, generate_continuous
    from gamealign.sampling_vllm import vllm_usable

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tok = load_model(a.model)
    model.to(device)
    if device.type == "cuda":
        model.to(torch.bfloat16)
    prompts = builtin_prompts(a.prompts, seed=a.seed)
    texts = chat_texts(tok, prompts)
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "prompts": a.prompts, "k": a.k, "batch_size": a.batch_size, "max_new_tokens": a.max_new_tokens}

    # warm-up at the measured size: the first full batch on a GPU pays the caching allocator's growth and
    # kernel selection for its shapes (measured on an H100: plain `generate` 5,400 tokens/s run first, 8,000
    # run again), which would otherwise be charged to whichever variant comes first
    warm = min(len(prompts), max(1, a.batch_size // a.k))
    generate(model, tok, prompts[:warm], a.k, temperature=1.0, top_p=1.0, max_new_tokens=a.max_new_tokens,
             batch_size=a.batch_size, seed=a.seed + 1, desc="warm-up")
    common = dict(temperature=1.0, top_p=1.0, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, seed=a.seed)
    # in the order given; a name given twice is measured twice ("plain", "plain_2"), to see order effects
    # (the first large batch on a GPU pays allocator growth and kernel selection for its shapes)
    for name in a.impl:
        key = name if name not in results else f"{name}_{sum(k.split('_')[0] == name for k in results) + 1}"
        if name == "ours":
            t0 = time.time()
            _, stats = generate(model, tok, prompts, a.k, desc="ours", **common)
            results[key] = {"tokens": stats["new_tokens"], "seconds": time.time() - t0}
        elif name == "plain":
            t0 = time.time()
            n = plain_generate(model, tok, texts, a.k, a.batch_size, a.max_new_tokens, a.seed)
            results[key] = {"tokens": n, "seconds": time.time() - t0}
        elif name == "continuous":
            t0 = time.time()
            _, stats = generate_continuous(model, tok, prompts, a.k, desc="continuous", **common)
            results[key] = {"tokens": stats["new_tokens"], "seconds": time.time() - t0,
                            "generate_seconds": stats["seconds"]}
        elif name == "ct2":
            from gamealign.sampling_ct2 import generate_ct2

            t0 = time.time()
            _, stats = generate_ct2(a.model, prompts, a.k, threads=torch.get_num_threads(), desc="ct2", **common)
            results[key] = {"tokens": stats["new_tokens"], "seconds": time.time() - t0,
                            "generate_seconds": stats["seconds"], "convert_s": stats["convert_s"]}
    usable, reason = vllm_usable()
    if "vllm" in a.impl and usable:
        from gamealign.sampling_vllm import generate_vllm

        del model
        torch.cuda.empty_cache()
        t0 = time.time()
        _, vstats = generate_vllm(a.model, prompts, a.k, temperature=1.0, top_p=1.0,
                                  max_new_tokens=a.max_new_tokens, seed=a.seed, gpu_memory_utilization=0.5)
        results["vllm"] = {"tokens": vstats["new_tokens"], "seconds": time.time() - t0,
                           "generate_seconds": vstats["seconds"]}
    elif "vllm" in a.impl:
        results["vllm"] = {"skipped": reason}
    names = [key for key in results if isinstance(results[key], dict)]
    for name in names:
        r = results[name]
        if "tokens" in r:
            r["tokens_per_s"] = r["tokens"] / r["seconds"]
    if "tokens_per_s" in results.get("plain", {}):
        base = results["plain"]["tokens_per_s"]
        for name in names:
            if name != "plain" and "tokens_per_s" in results[name]:
                results[f"ratio_{name}_vs_plain"] = results[name]["tokens_per_s"] / base
    if "tokens_per_s" in results.get("ct2", {}) and "tokens_per_s" in results.get("ours", {}):
        results["ratio_ours_hf_vs_ct2"] = results["ours"]["tokens_per_s"] / results["ct2"]["tokens_per_s"]
    print(json.dumps(results, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
