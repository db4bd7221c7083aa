"""On-policy sampling with vLLM (`pip install -e '.[vllm]'`, a CUDA machine): same rows as the HF backend.

One `LLM.generate` call over all prompts, each with its own `SamplingParams(n=K, seed=...)`: one seed per
prompt derived from the job seed and the prompt id (a single seed for all would make sample k of every
prompt draw the same random stream); vLLM's continuous
batching replaces our length-sorted batches. Tensor parallelism via `tensor_parallel_size`. Rows follow
DESIGN.md §3 exactly as `sampling.generate` writes them: `{prompt_id, k, text, n_tokens, finish_reason}`,
with n_tokens counting the response tokens before EOS and finish_reason "stop" or "length".
"""

from __future__ import annotations

import time

from .sampling import HF_BACKENDS, chat_texts, truncation_counts


class BackendUnavailable(RuntimeError):
    pass


def vllm_usable() -> tuple[bool, str]:
    """(usable, reason): vLLM is importable and a CUDA device is visible."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA stack raising at import
        return False, f"vllm is not importable ({type(exc).__name__}: {exc})"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return True, "vllm importable and a CUDA device visible"


def ct2_usable() -> tuple[bool, str]:
    """(usable, reason): CTranslate2 is importable (its CPU build; the study uses it for CPU sampling)."""
    try:
        import ctranslate2  # noqa: F401
    except Exception as exc:
        return False, f"ctranslate2 is not importable ({type(exc).__name__}: {exc})"
    return True, "ctranslate2 importable"


def resolve_backend(backend: str) -> str:
    """`auto` → vllm where usable; on a machine without CUDA, ct2 where importable; else hf. `vllm` or `ct2`
    where not usable → BackendUnavailable naming the key."""
    if backend in HF_BACKENDS:
        return backend
    if backend == "ct2":
        usable, reason = ct2_usable()
        if not usable:
            raise BackendUnavailable(f"sampling.backend is 'ct2' but {reason}; pip install ctranslate2==4.8.5, "
                                     "or use 'hf' / 'auto'")
        return "ct2"
    usable, reason = vllm_usable()
    if backend == "vllm" and not usable:
        raise BackendUnavailable(f"sampling.backend is 'vllm' but {reason}; install the extra "
                                 "(pip install -e '.[vllm]') on a GPU machine, or use 'hf' / 'auto'")
    if usable:
        return "vllm"
    import torch

    return "ct2" if not torch.cuda.is_available() and ct2_usable()[0] else "hf"


def prompt_seeds(seed: int, prompts: list[dict]) -> list[int]:
    """One sampling seed per prompt, derived from the job seed and the prompt's id (stable under reordering)."""
    from .config import derive_seed

    return [derive_seed(seed, "vllm", p["id"]) for p in prompts]


def generate_vllm(model_path: str, prompts: list[dict], k: int, *, temperature: float, top_p: float,
                  max_new_tokens: int, seed: int, greedy: bool = False, system_prompt: str | None = None,
                  tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85) -> tuple[list[dict], dict]:
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts = chat_texts(tokenizer, prompts, system_prompt)
    llm = LLM(model=str(model_path), tokenizer=str(model_path), tensor_parallel_size=tensor_parallel_size,
              seed=seed, dtype="bfloat16", gpu_memory_utilization=gpu_memory_utilization)
    eos = tokenizer.eos_token_id
    params = [SamplingParams(n=1 if greedy else k, temperature=0.0 if greedy else temperature,
                             top_p=1.0 if greedy else top_p, max_tokens=max_new_tokens, seed=s,
                             stop_token_ids=[eos], skip_special_tokens=True) for s in prompt_seeds(seed, prompts)]
    t0 = time.time()
    outputs = llm.generate(texts, params)
    seconds = time.time() - t0
    rows, new_tokens = [], 0
    for prompt, out in zip(prompts, outputs):
        for kk, c in enumerate(out.outputs):
            ids = list(c.token_ids)
            stopped = c.finish_reason == "stop"
            n = len(ids) - (1 if stopped and ids and ids[-1] == eos else 0)
            rows.append({"prompt_id": prompt["id"], "k": kk, "text": c.text.strip(), "n_tokens": n,
                         "finish_reason": "stop" if stopped else "length"})
            new_tokens += n
    stats = {"n_sequences": len(rows), "new_tokens": new_tokens, "seconds": round(seconds, 3),
             "tokens_per_second": round(new_tokens / max(seconds, 1e-9), 2), "backend": "vllm",
             "tensor_parallel_size": tensor_parallel_size, **truncation_counts(rows)}
    return rows, stats
