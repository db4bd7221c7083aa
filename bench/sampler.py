"""Sampler throughput: our samplers vs plain `model.generate` and vs CTranslate2 itself, at the same batch size.

  ours     gamealign.sampling.generate (sampling.backend hf): all K×prompts work items sorted by prompt
           length, left-padded batches of --batch-size, generation stops when every sequence has ended
  static   the same with a static KV cache (sampling.backend hf-static): every batch padded to the job's
           longest prompt, so that on CUDA generate compiles the decode step once (CUDA graphs); its wall time
           includes that compile (the warm-up's batch has other shapes), which every sampling job pays
  plain    model.generate over the prompts in their given order, one prompt's K samples per call
           batched up to --batch-size (num_return_sequences), no length sorting
  continuous  gamealign.sampling.generate_continuous (sampling.backend hf-continuous): transformers'
           continuous batching, at most --batch-size sequences decoding at once; its wall time
           includes the CUDA-graph warm-up that every sampling job pays
  ct2      gamealign.sampling_ct2.generate_ct2 (sampling.backend ct2, what `auto` picks on CPU): the
           checkpoint converted to CTranslate2 float32 and sampled as a sampling job does; its wall time
           includes that conversion (`convert_s`), which every sampling job pays
  ct2-raw  CTranslate2 itself, the reference: `Generator.generate_batch` on an already converted float32
           model (conversion not timed), every prompt × K item in one call with max_batch_size=--batch-size,
           so CTranslate2 sorts them by length and batches them itself (its documented way)
  vllm     gamealign.sampling_vllm.generate_vllm (only where vLLM and a GPU are usable)

Every variant runs in a process of its own, one after the other (`--worker`), as a sampling job runs
alone: nothing a variant loads, warms or leaves spinning (torch's and CTranslate2's OpenMP pools, the
CUDA allocator) reaches the next. Before its timed call each variant warms up on one batch of 8 new
tokens (the HF variants with the loaded model; `ct2` by a small generate_ct2 call, so the timed call
still pays a full conversion; `ct2-raw` on its converted model). Imports and model loading are not
timed. Prints new tokens/s of each and the ratios against `plain` and `ct2-raw`, in one run on the
same model, prompts, batch and lengths; a variant given several times is run that many times, alternating
with the others as given, and the medians over its runs and their ratios are printed too. The CTranslate2
variants import ctranslate2 before torch, as `gamealign sample` does (loaded after torch, CTranslate2 binds
to torch's OpenMP runtime and generates about 20 % slower). The prompts mix short and long instructions (the built-in
generator), as a study's do.

Usage: python bench/sampler.py --model results/sft/model --prompts 32 --k 4 --batch-size 64 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPLS = ["ours", "static", "plain", "continuous", "ct2", "ct2-raw", "vllm"]


def plain_generate(model, tokenizer, texts, k, batch_size, max_new_tokens, seed):
    import torch

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


def ct2_raw(model_dir, tokenizer, texts, k, batch_size, max_new_tokens, seed, threads, warm):
    """CTranslate2 as its documentation uses it: convert once, then one generate_batch over all items."""
    import ctranslate2

    from gamealign.sampling_ct2 import convert

    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    items = [tokenizer.convert_ids_to_tokens(ids[pi]) for pi in range(len(ids)) for _ in range(k)]
    eos = tokenizer.eos_token_id
    with tempfile.TemporaryDirectory(prefix="ct2-raw-") as tmp:
        gen = ctranslate2.Generator(str(convert(model_dir, tmp)), device="cpu", compute_type="float32",
                                    intra_threads=threads, inter_threads=1)

        def run(items, max_length):
            ctranslate2.set_random_seed(seed)
            n = 0
            for r in gen.generate_batch(items, max_length=max_length, max_batch_size=batch_size,
                                        include_prompt_in_result=False, end_token=[eos], return_end_token=True,
                                        sampling_topk=0, sampling_topp=1.0, sampling_temperature=1.0):
                seq = r.sequences_ids[0]
                n += seq.index(eos) if eos in seq else len(seq)
            return n

        run(items[:warm * k], 8)
        t0 = time.time()
        n = run(items, max_new_tokens)
        return {"tokens": n, "seconds": time.time() - t0}


def worker(a) -> dict:
    """One variant, timed in this process."""
    if a.worker in ("ct2", "ct2-raw"):
        # before torch, as `gamealign sample` does: a CTranslate2 loaded after torch binds to torch's OpenMP
        # runtime and generates about 20 % slower (bench/README.md)
        try:
            import ctranslate2  # noqa: F401
        except ImportError:
            pass
    import torch

    from gamealign.prompts import builtin_prompts
    from gamealign.sampling_vllm import ct2_usable, vllm_usable

    name = a.worker
    if name in ("ct2", "ct2-raw") and not ct2_usable()[0]:
        return {"skipped": ct2_usable()[1]}
    if name == "vllm" and not vllm_usable()[0]:
        return {"skipped": vllm_usable()[1]}
    torch.set_num_threads(a.threads)
    prompts = builtin_prompts(a.prompts, seed=a.seed)
    warm = min(len(prompts), max(1, a.batch_size // a.k))
    common = dict(temperature=1.0, top_p=1.0, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, seed=a.seed)
    if name == "ct2":
        from gamealign.sampling_ct2 import generate_ct2

        generate_ct2(a.model, prompts[:warm], a.k, threads=a.threads, desc="warm-up",
                     **{**common, "max_new_tokens": 8, "seed": a.seed + 1})
        t0 = time.time()
        _, stats = generate_ct2(a.model, prompts, a.k, threads=a.threads, desc="ct2", **common)
        return {"tokens": stats["new_tokens"], "seconds": time.time() - t0, "generate_seconds": stats["seconds"],
                "convert_s": stats["convert_s"]}
    if name == "vllm":
        from gamealign.sampling_vllm import generate_vllm

        t0 = time.time()
        _, stats = generate_vllm(a.model, prompts, a.k, temperature=1.0, top_p=1.0, max_new_tokens=a.max_new_tokens,
                                 seed=a.seed, gpu_memory_utilization=0.5)
        return {"tokens": stats["new_tokens"], "seconds": time.time() - t0, "generate_seconds": stats["seconds"]}

    from gamealign.models import load_model
    from gamealign.sampling import chat_texts, hf_generator

    if name == "ct2-raw":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(a.model)
        return ct2_raw(a.model, tok, chat_texts(tok, prompts), a.k, a.batch_size, a.max_new_tokens, a.seed, a.threads,
                       warm)
    model, tok = load_model(a.model)
    texts = chat_texts(tok, prompts)
    if torch.cuda.is_available():
        model.to("cuda").to(getattr(torch, a.dtype))
    if name == "plain":
        plain_generate(model, tok, texts[:warm], a.k, a.batch_size, 8, a.seed + 1)
        t0 = time.time()
        n = plain_generate(model, tok, texts, a.k, a.batch_size, a.max_new_tokens, a.seed)
        return {"tokens": n, "seconds": time.time() - t0}
    run = hf_generator({"ours": "hf", "static": "hf-static", "continuous": "hf-continuous"}[name])
    run(model, tok, prompts[:warm], a.k, desc="warm-up", **{**common, "max_new_tokens": 8, "seed": a.seed + 1})
    t0 = time.time()
    _, stats = run(model, tok, prompts, a.k, desc=name, **common)
    return {"tokens": stats["new_tokens"], "seconds": time.time() - t0, "generate_seconds": stats["seconds"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch and CTranslate2 threads of every variant (a sampling job's --threads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                    help="the HF variants' weights on CUDA (a study's sampling jobs use float32; CPU: float32 always)")
    ap.add_argument("--impl", nargs="+", default=IMPLS, choices=IMPLS,
                    help="in this order; a name given twice is measured twice (name, name_2), to see order effects")
    ap.add_argument("--out")
    ap.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        print("RESULT " + json.dumps(worker(a)))
        return

    import torch

    results = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "prompts": a.prompts, "k": a.k, "batch_size": a.batch_size, "max_new_tokens": a.max_new_tokens,
               "threads": a.threads, "temperature": 1.0, "top_p": 1.0,
               "dtype": a.dtype if torch.cuda.is_available() else "float32"}
    base = [sys.executable, __file__, "--model", a.model, "--prompts", str(a.prompts), "--k", str(a.k),
            "--batch-size", str(a.batch_size), "--max-new-tokens", str(a.max_new_tokens),
            "--threads", str(a.threads), "--seed", str(a.seed), "--dtype", a.dtype]
    for name in a.impl:
        key = name if name not in results else f"{name}_{sum(k.rsplit('_', 1)[0] == name for k in results) + 1}"
        proc = subprocess.run(base + ["--worker", name], stdout=subprocess.PIPE, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"bench/sampler.py: the {name} variant failed (exit {proc.returncode}); its output:\n{proc.stdout}")
        results[key] = json.loads(lines[-1][len("RESULT "):])
        r = results[key]
        if "tokens" in r:
            r["tokens_per_s"] = r["tokens"] / r["seconds"]
        print(f"{key}: {json.dumps(r)}", file=sys.stderr, flush=True)
    measured = [key for key in results if isinstance(results[key], dict) and "tokens_per_s" in results[key]]
    for ref in ("plain", "ct2-raw"):
        if ref in measured:
            for key in measured:
                if key != ref:
                    results[f"ratio_{key}_vs_{ref}"] = results[key]["tokens_per_s"] / results[ref]["tokens_per_s"]
    # on 2 shared cores one variant's tokens/s varies by ±10 % from run to run: given several times, the
    # medians over its runs and their ratios are the numbers to quote
    runs = {}
    for key in measured:
        base = key.rsplit("_", 1)[0] if key.rsplit("_", 1)[-1].isdigit() else key
        runs.setdefault(base, []).append(results[key]["tokens_per_s"])
    if any(len(v) > 1 for v in runs.values()):
        median = {name: statistics.median(v) for name, v in runs.items()}
        results["median_tokens_per_s"] = {name: {"median": median[name], "runs": len(runs[name])} for name in runs}
        for ref in ("plain", "ct2-raw"):
            for name in median:
                if ref in median and name != ref:
                    results[f"ratio_median_{name}_vs_{ref}"] = median[name] / median[ref]
    print(json.dumps(results, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
