"""On-policy sampling (HF transformers backend).

K responses per prompt with the model's chat template. Work items are sorted by prompt length
and generated in large left-padded batches (less padding, fewer wasted FLOPs); generation stops
early once every sequence in a batch has ended. Output rows follow DESIGN.md §3:
`{prompt_id, k, text, n_tokens, finish_reason}` with finish_reason "stop" (EOS) or "length".
"""

from __future__ import annotations

import time

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
             system_prompt: str | None = None, desc: str = "sampling") -> tuple[list[dict], dict]:
    """Return (rows, stats). Rows are ordered by (prompt order, k) whatever the batching."""
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
    t0 = time.time()
    new_tokens = 0
    with tqdm(total=len(items), desc=desc, unit="seq") as bar, torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            enc = tokenizer([texts[pi] for pi, _ in batch], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            out = model.generate(**enc, **gen_cfg)
            gen = out[:, enc.input_ids.shape[1]:]
            for (pi, kk), row in zip(batch, gen.tolist()):
                n, finish = len(row), "length"
                for pos, tok in enumerate(row):
                    if tok in eos_ids:
                        n, finish = pos, "stop"
                        break
                text = tokenizer.decode(row[:n], skip_special_tokens=True).strip()
                results[(pi, kk)] = {"prompt_id": prompts[pi]["id"], "k": kk, "text": text,
                                     "n_tokens": n, "finish_reason": finish}
                new_tokens += n
            bar.update(len(batch))
    seconds = time.time() - t0
    rows = [results[(pi, kk)] for pi in range(len(prompts)) for kk in range(k)]
    stats = {"n_sequences": len(rows), "new_tokens": new_tokens, "seconds": round(seconds, 3),
             "tokens_per_second": round(new_tokens / max(seconds, 1e-9), 2)}
    return rows, stats
