"""On-policy sampling (HF transformers backend).

K responses per prompt with the model's chat template. Work items are sorted by prompt length
and generated in large left-padded batches (less padding, fewer wasted FLOPs); generation stops
early once every sequence in a batch has ended (`generate`, backend `hf`). `generate_continuous`
(backend `hf-continuous`) hands the same work to transformers' continuous batching instead. Output
rows of both follow DESIGN.md §3:
`{prompt_id, k, text, n_tokens, finish_reason}` with finish_reason "stop" (EOS) or "length".
"""

from __future__ import annotations

import time
from functools import partial

from tqdm.auto import tqdm


def chat_texts(tokenizer, prompts: list[dict], system_prompt: str | None = None) -> list[str]:
    out = []
    for p in prompts:
        messages = list(p["messages"])
        if system_prompt:
            messages = [{"role": "system", "content": system_prompt}] + messages
        out.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return out


def generate(model, tokenizer, prompts: list[dict], k: int, *, temperature: float, top_p: float,
             max_new_tokens: int, batch_size: int, seed: int, greedy: bool = False,
             system_prompt: str | None = None, desc: str = "sampling",
             static_cache: bool = False) -> tuple[list[dict], dict]:
    """Return (rows, stats). Rows are ordered by (prompt order, k) whatever the batching.

    `static_cache` (`sampling.backend: hf-static`): transformers' static KV cache, every batch's prompts left-padded
    to the job's longest, so that each decode step has one shape for the whole job. On CUDA, generate then compiles
    the decode step (torch.compile, mode reduce-overhead: CUDA graphs) once per job — and once more for a smaller last
    batch — which removes the per-step launch overhead that bounds a small model's decoding there. On CPU nothing is
    compiled and the rows are those of the default path (greedy: the same tokens; tested)."""
    import torch

    torch.manual_seed(seed)
    model.eval()
    tokenizer.padding_side = "left"
    texts = chat_texts(tokenizer, prompts, system_prompt)
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    items = [(pi, kk) for pi in range(len(prompts)) for kk in range(k)]
    items.sort(key=lambda it: (lengths[it[0]], it[0], it[1]))
    results: dict[tuple[int, int], dict] = {}
    eos_ids = {tokenizer.eos_token_id}
    gen_cfg = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                   eos_token_id=tokenizer.eos_token_id)
    if greedy:
        gen_cfg.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        gen_cfg.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    padding = dict(padding=True)
    if static_cache:
        gen_cfg.update(cache_implementation="static")
        padding = dict(padding="max_length", max_length=max(lengths, default=1))
    t0 = time.time()
    new_tokens = 0
    with tqdm(total=len(items), desc=desc, unit="seq") as bar, torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            enc = tokenizer([texts[pi] for pi, _ in batch], return_tensors="pt", add_special_tokens=False,
                            **padding).to(model.device)
            out = model.generate(**enc, **gen_cfg)
            gen = out[:, enc.input_ids.shape[1]:]
            for (pi, kk), row in zip(batch, gen.tolist()):
                results[(pi, kk)] = _row(tokenizer, prompts[pi]["id"], kk, row, eos_ids)
                new_tokens += results[(pi, kk)]["n_tokens"]
            bar.update(len(batch))
    seconds = time.time() - t0
    return _finish(prompts, k, results, new_tokens, seconds)


def generate_continuous(model, tokenizer, prompts: list[dict], k: int, *, temperature: float, top_p: float,
                        max_new_tokens: int, batch_size: int, seed: int, greedy: bool = False,
                        system_prompt: str | None = None, desc: str = "sampling") -> tuple[list[dict], dict]:
    """The same rows through transformers' continuous batching (`model.generate_batch`).

    A paged KV cache (prefix blocks shared between the K copies of a prompt where the model allows);
    a finished sequence is replaced at once by a waiting one (no batch waits for its longest member);
    on CUDA the decode step runs as a CUDA graph. At most `batch_size` sequences decode together.
    Seeded through the continuous-batching config."""
    import re

    from transformers import ContinuousBatchingConfig, GenerationConfig

    model.eval()
    texts = chat_texts(tokenizer, prompts, system_prompt)
    encoded = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    # each prompt K times (request n = prompt n // K, sample n % K): generate_batch's own
    # num_return_sequences did not return the extra samples in transformers 5.17
    inputs = [ids for ids in encoded for _ in range(k)]
    sampling = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id, **sampling)
    # cache sized for `batch_size` sequences of the longest prompt + max_new_tokens (left to itself,
    # transformers sizes it from free memory, which on CPU costs ~20 s of allocation per call)
    block = 256
    longest = max(map(len, encoded), default=1)
    num_blocks = batch_size * -(-(longest + max_new_tokens) // block) + 1
    cb_cfg = ContinuousBatchingConfig(seed=seed, max_requests_per_batch=batch_size, block_size=block,
                                      num_blocks=num_blocks, max_batch_tokens=max(longest + batch_size, 2048))
    print(f"{desc}: {len(prompts)} prompts x {k} (continuous batching)", flush=True)
    t0 = time.time()
    outputs = model.generate_batch(inputs, generation_config=gen_cfg, continuous_batching_config=cb_cfg,
                                   progress_bar=True, warmup=model.device.type == "cuda")
    seconds = time.time() - t0
    by_index = {}
    for req_id, out in outputs.items():
        m = re.fullmatch(r"req_(\d+)", req_id)
        if m is None or out.error:
            raise RuntimeError(f"{desc}: continuous batching request {req_id} failed: {out.error or 'unexpected id'}")
        by_index[int(m.group(1))] = out.generated_tokens
    first = min(by_index, default=0)  # request numbers continue where an earlier manager stopped
    results = {}
    for n, tokens in by_index.items():
        pi, kk = divmod(n - first, k)
        results[(pi, kk)] = _row(tokenizer, prompts[pi]["id"], kk, tokens, {tokenizer.eos_token_id})
    if len(results) != len(inputs):
        raise RuntimeError(f"{desc}: continuous batching returned {len(results)} of {len(inputs)} samples")
    return _finish(prompts, k, results, sum(r["n_tokens"] for r in results.values()), seconds)



# The HF transformers backends of `sampling.backend` and their generation functions, each called as `generate` is
# and returning (rows, stats): the one list of them (sampling_vllm.resolve_backend passes these names through; the
# schema's enum, which the CLI's --backend choices come from, must hold them: tests/test_sampling.py).
HF_BACKENDS = {"hf": generate, "hf-static": partial(generate, static_cache=True), "hf-continuous": generate_continuous}


def hf_generator(backend: str):
    """The generation function of an HF backend (`sampling.backend`): one of HF_BACKENDS."""
    return HF_BACKENDS[backend]


def _row(tokenizer, prompt_id, k, tokens: list[int], eos_ids: set[int]) -> dict:
    """A sample row: the text before the first EOS; finish_reason "stop" (EOS) or "length"."""
    n, finish = len(tokens), "length"
    for pos, tok in enumerate(tokens):
        if tok in eos_ids:
            n, finish = pos, "stop"
            break
    text = tokenizer.decode(tokens[:n], skip_special_tokens=True).strip()
    return {"prompt_id": prompt_id, "k": k, "text": text, "n_tokens": n, "finish_reason": finish}


def truncation_counts(rows: list[dict]) -> dict:
    """How many sample rows stopped at max_new_tokens (finish_reason "length"), and their share."""
    truncated = sum(r["finish_reason"] == "length" for r in rows)
    return {"truncated": truncated, "truncation_rate": round(truncated / max(len(rows), 1), 4)}


def _finish(prompts, k, results, new_tokens, seconds):
    rows = [results[(pi, kk)] for pi in range(len(prompts)) for kk in range(k)]
    stats = {"n_sequences": len(rows), "new_tokens": new_tokens, "seconds": round(seconds, 3),
             "tokens_per_second": round(new_tokens / max(seconds, 1e-9), 2), **truncation_counts(rows)}
    return rows, stats


# --- sampling.shards: one round's prompts split over several jobs, joined in prompt order -----------------------
def shard_of(prompts: list[dict], shard: int, shards: int, seed: int, per_prompt_seeds: bool) -> tuple[list, int]:
    """(this job's contiguous share of the prompts, its sampling seed). A backend that seeds each prompt from the
    job seed and the prompt id (vLLM) keeps the job seed, so every prompt's samples are those of one job; the
    others draw one random stream per job, so each shard gets its own stream (derived from the job seed) and the
    samples differ from one job's — the rows, their order and the contract do not; greedy texts are the same."""
    from .config import derive_seed

    if not 0 <= shard < shards:
        raise ValueError(f"--shard {shard}: not in 0..{shards - 1}")
    n = len(prompts)
    lo, hi = n * shard // shards, n * (shard + 1) // shards
    return prompts[lo:hi], seed if per_prompt_seeds else derive_seed(seed, "shard", shard)


def merge_shards(prompts: list[dict], shards: list[list[dict]], names: list[str]) -> list[dict]:
    """The shards' rows as one samples file: prompts in the prompts file's order, each prompt's rows by k. Every
    prompt must come from exactly one shard (DataError naming the shard files otherwise)."""
    from .io import DataError

    owner: dict[str, str] = {}
    by_prompt: dict[str, list[dict]] = {}
    for name, rows in zip(names, shards):
        for row in rows:
            pid = row["prompt_id"]
            if owner.setdefault(pid, name) != name:
                raise DataError(f"{name}: prompt {pid} was sampled by {owner[pid]} too (overlapping shards)")
            by_prompt.setdefault(pid, []).append(row)
    missing = [p["id"] for p in prompts if p["id"] not in by_prompt]
    if missing:
        raise DataError(f"{', '.join(names)}: no samples for {len(missing)} prompt(s), e.g. {missing[0]}")
    return [row for p in prompts for row in sorted(by_prompt[p["id"]], key=lambda r: int(r["k"]))]


def merge_shard_stats(stats: list[dict], names: list[str]) -> dict:
    """One stats record for the merged samples: the first shard's settings and provenance, counts summed,
    throughput over the summed time, and each shard's seed and file."""
    out = {k: v for k, v in stats[0].items() if k not in ("shard", "shard_seed", "prompts")}
    for key in ("n_sequences", "new_tokens", "truncated", "seconds", "convert_s"):
        if all(key in s for s in stats):
            out[key] = sum(s[key] for s in stats)
    if out.get("n_sequences"):
        out["truncation_rate"] = round(out.get("truncated", 0) / out["n_sequences"], 4)
    if out.get("seconds"):
        out["tokens_per_second"] = round(out.get("new_tokens", 0) / out["seconds"], 2)
    out["prompts"] = stats[0].get("prompts")
    out["shards"] = [{"file": n, "seed": s.get("shard_seed"), "n_sequences": s.get("n_sequences")}
                     for n, s in zip(names, stats)]
    return out
