"""Training-step throughput and peak memory: our DPO step vs a naive step vs TRL's DPOTrainer.

All variants run on the same model and the same pairs in one process and print tokens/s, peak
memory and ratios against each other (never asserted: this is a benchmark, not a test).

  ours        policy forward/backward only; frozen log-probs precomputed once; response-only,
              chunked selective log-softmax (no full-vocabulary logits); bf16 autocast on CUDA
  ours-gc     the same with gradient checkpointing of the decoder blocks (train.gradient_checkpointing)
  ours-mb     the same as ours in micro-batches of --micro-pairs pairs, one optimizer step per batch
              (train.micro_batch_size)
  ours-compile  ours with every decoder block under torch.compile (train.compile)
  ours-liger  ours with liger-kernel's fused RMSNorm, SwiGLU and RoPE Triton kernels (CUDA only)
  ours-lce    ours with the LM head + log-softmax fused by liger-kernel's linear cross-entropy (CUDA only)
  ours-fadam  ours with torch's fused AdamW (one kernel for the whole update; CUDA only)
  ours-graph  the whole step (forward, backward, AdamW) captured once as a CUDA graph and replayed: no Python
              or kernel-launch overhead per step (static shapes; no attention mask, the rows are unpadded)
  ours-prefix one row per pair holding its prompt once, [prompt | chosen | rejected] behind a block mask
              (train.shared_prefix): (prompt + 2 x response) tokens a pair through the model instead of
              2 x (prompt + response); tokens/s still counts the pairs' 2 x seq-len tokens, as for the others
              suffixes combine, e.g. ours-compile-lce-mb4; mbN sets the micro-batch to N pairs
  naive       the textbook step: reference forward every step + full-vocabulary log_softmax
  trl         TRL DPOTrainer (loss_type sigmoid) with its defaults            (if trl is installed)
  trl-pre     TRL DPOTrainer with precompute_ref_log_probs=True               (if trl is installed)

Usage: python bench/train_step.py --model results/sft/model --pairs 32 --seq-len 512 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import torch
import torch.nn.functional as F


def make_pairs(tokenizer, n_pairs, seq_len, prompt_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    vocab = tokenizer.vocab_size
    low = 1000  # stay clear of special tokens
    out = []
    for _ in range(n_pairs):
        prompt = torch.randint(low, vocab, (prompt_len,), generator=g).tolist()
        chosen = torch.randint(low, vocab, (seq_len - prompt_len,), generator=g).tolist()
        rejected = torch.randint(low, vocab, (seq_len - prompt_len,), generator=g).tolist()
        out.append((prompt, chosen, rejected))
    return out


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


OURS_FLAGS = {"gc", "mb", "compile", "liger", "lce", "fadam", "graph", "prefix"}


def parse_ours(impl: str, default_micro: int) -> dict:
    """ours-compile-lce-mb4 → {'compile', 'lce', 'mb'} with micro=4; unknown suffixes are refused by name."""
    flags, micro = set(), None
    for part in impl.split("-")[1:]:
        if part.startswith("mb") and part[2:].isdigit():
            flags.add("mb")
            micro = int(part[2:])
        elif part in OURS_FLAGS:
            flags.add(part)
            micro = default_micro if part == "mb" else micro
        else:
            raise SystemExit(f"--impl {impl}: unknown suffix {part!r} (known: {sorted(OURS_FLAGS)}, mbN)")
    return {"checkpointing": "gc" in flags, "compiled": "compile" in flags, "liger": "liger" in flags,
            "fused_lce": "lce" in flags, "fused_adam": "fadam" in flags, "graph": "graph" in flags,
            "prefix": "prefix" in flags,
            "micro": micro if "mb" in flags else None}


def pair_rows(pairs, prefix, device):
    """(rows, split) of these pairs: `Rows` as ours feeds the model and split(log-probs) → (chosen, rejected).
    Padded: the chosen sequences' rows then the rejected ones', all full length, so no attention mask;
    prefix: one row per pair, [prompt | chosen | rejected] with the block mask of train.shared_prefix."""
    from gamealign.logprobs import padded_rows, shared_prefix_rows

    n = len(pairs)
    if prefix:
        rows = shared_prefix_rows([[(p + c, len(p)), (p + r, len(p))] for p, c, r in pairs], 0, device)
        return rows, lambda lp: (lp[0::2], lp[1::2])
    rows = padded_rows([(p + c, len(p)) for p, c, _ in pairs] + [(p + r, len(p)) for p, _, r in pairs], 0, device)
    return rows._replace(attention_mask=None), lambda lp: (lp[:n], lp[n:])


def bench_ours(model, pairs, steps, warmup, device, chunk=4096, checkpointing=False, micro=None, compiled=False,
               liger=False, fused_lce=False, fused_adam=False, graph=False, prefix=False):
    from gamealign.logprobs import rows_logprobs
    from gamealign.training import compile_blocks, use_liger_kernels

    if liger:
        use_liger_kernels(model)
    if compiled:  # compilation happens in the warm-up steps, outside the timing
        compile_blocks(model)
    if checkpointing:  # no dropout, so no RNG state to preserve (and a CUDA graph cannot read it while capturing)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False,
                                                                           "preserve_rng_state": False})
    n = len(pairs)
    micro = n if graph else (micro or n)  # the graph captures the whole batch in one pass
    batches = [pair_rows(pairs[s:s + micro], prefix, device) for s in range(0, n, micro)]
    tokens = sum(len(p) + len(c) + len(p) + len(r) for p, c, r in pairs)  # the pairs' tokens, whatever the layout
    through = sum(rows.input_ids.numel() for rows, _ in batches)  # what the model actually runs on
    model.eval()
    with torch.no_grad(), _autocast(device):  # frozen log-probs: once per round, not per step
        refs = [split(rows_logprobs(model, rows, chunk, fused=fused_lce).float()) for rows, split in batches]
    model.train()
    if graph:
        step = _graphed_step(model, batches[0], refs[0], n, chunk, device, fused_adam)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-7, fused=fused_adam or None)
        step = lambda: _step_ours(model, opt, batches, refs, n, chunk, device, fused_lce)  # noqa: E731
    out = _timed(step, steps, warmup, device, tokens)
    out["model_tokens_per_step"] = through
    return out


def _step_ours(model, opt, batches, refs, n, chunk, device, fused_lce=False):
    from gamealign.algorithms.dpo import dpo_loss
    from gamealign.logprobs import rows_logprobs

    for (rows, split), (ref_c, ref_r) in zip(batches, refs):  # one forward/backward per micro-batch
        with _autocast(device):
            chosen, rejected = split(rows_logprobs(model, rows, chunk, fused=fused_lce).float())
        loss, _ = dpo_loss(chosen, rejected, ref_c, ref_r, 0.1)
        (loss.sum() / n).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _graphed_step(model, batch, ref, n, chunk, device, fused_adam):
    """The whole step as one CUDA graph (torch's "whole network capture"): warm up on a side stream, capture
    forward + backward + AdamW (capturable) once, replay it. Everything in it must stay on the device: the
    response positions (and a prefix layout's mask) are precomputed, autocast without its weight cache."""
    from gamealign.algorithms.dpo import dpo_loss
    from gamealign.logprobs import rows_logprobs

    opt = torch.optim.AdamW(model.parameters(), lr=1e-7, capturable=True, fused=fused_adam or None)
    rows, split = batch
    ref_c, ref_r = ref

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            chosen, rejected = split(rows_logprobs(model, rows, chunk).float())
        loss, _ = dpo_loss(chosen, rejected, ref_c, ref_r, 0.1)
        (loss.sum() / n).backward()
        opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    opt.zero_grad(set_to_none=True)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    return g.replay


def bench_naive(model, ref_model, pairs, steps, warmup, device):
    seqs = [p + c for p, c, _ in pairs] + [p + r for p, _, r in pairs]
    ids = torch.tensor(seqs, device=device)
    mask = torch.zeros_like(ids, dtype=torch.float)
    for i, (p, _, _) in enumerate(pairs + pairs):
        mask[i, len(p):] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=1e-7)
    n = len(pairs)

    def logp(m):
        with _autocast(device):
            logits = m(input_ids=ids).logits[:, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return (lp * mask[:, 1:]).sum(-1)

    def step():
        with torch.no_grad():
            ref = logp(ref_model)
        lp = logp(model)
        h = (lp[:n] - ref[:n]) - (lp[n:] - ref[n:])
        (-F.logsigmoid(0.1 * h)).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _timed(step, steps, warmup, device, ids.numel())


def bench_trl(model_dir, tokenizer, pairs, steps, warmup, device, precompute, seq_len):
    import datasets
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    dec = lambda t: tokenizer.decode(t)
    ds = datasets.Dataset.from_list([{"prompt": dec(p), "chosen": dec(c), "rejected": dec(r)} for p, c, r in pairs])
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            _sync(device)
            times.append(time.perf_counter())

    cfg = DPOConfig(output_dir="/tmp/trl-bench", per_device_train_batch_size=len(pairs), max_steps=steps + warmup,
                    max_length=seq_len, loss_type=["sigmoid"], beta=0.1, learning_rate=1e-7, logging_steps=10**9,
                    save_strategy="no", report_to=[], precompute_ref_log_probs=precompute, bf16=device.type == "cuda",
                    use_cpu=device.type != "cuda", dataloader_drop_last=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=datasets.concatenate_datasets([ds] * (steps + warmup)),
                         processing_class=tokenizer, callbacks=[Timer()])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    _sync(device)
    times.append(time.perf_counter())
    per_step = (times[-1] - times[warmup]) / steps
    tokens = sum(len(tokenizer(dec(p) + dec(c)).input_ids[:seq_len]) + len(tokenizer(dec(p) + dec(r)).input_ids[:seq_len])
                 for p, c, r in pairs)
    return {"s_per_step": per_step, "tokens_per_step": tokens, "tokens_per_s": tokens / per_step,
            "peak_gib": _peak(device)}


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def _timed(step, steps, warmup, device, tokens):
    for _ in range(warmup):
        step()
    _sync(device)  # the peak is the variant's whole life (reset before it loads), as TRL's is its train()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    return {"s_per_step": dt, "tokens_per_step": tokens, "tokens_per_s": tokens / dt, "peak_gib": _peak(device)}


def _run_isolated(a, impl) -> dict:
    """One variant in a child process; its result plus the child's peak resident memory (wait4's ru_maxrss)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [sys.executable, __file__, "--model", a.model, "--pairs", str(a.pairs), "--seq-len", str(a.seq_len),
               "--prompt-len", str(a.prompt_len), "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--micro-pairs", str(a.micro_pairs), "--peak-tflops", str(a.peak_tflops), "--no-isolate",
               "--chunk", str(a.chunk),
               "--impl", impl, "--out", out]
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        timer = threading.Timer(a.variant_timeout, child.kill)  # one hung compile must not eat the others' time
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        timer.cancel()
        if os.waitstatus_to_exitcode(status) != 0:
            return {"failed": f"exit {os.waitstatus_to_exitcode(status)} (timeout {a.variant_timeout:g} s): "
                              f"{' '.join(cmd)}"}
        with open(out) as fh:
            result = json.load(fh)[impl]
    if "tokens_per_s" in result and not torch.cuda.is_available():
        result["peak_rss_gib"] = usage.ru_maxrss / 2**20  # KiB on Linux; on CUDA the child's allocator peak
    return result


def main():
    from gamealign.models import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--impl", nargs="+", default=["ours", "ours-gc", "ours-mb", "ours-compile", "ours-compile-mb",
                                                   "naive", "trl", "trl-pre"])
    ap.add_argument("--micro-pairs", type=int, default=8, help="pairs per forward/backward pass of ours-mb")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="the GPU's dense bf16 peak for MFU (H100 SXM: 989)")
    ap.add_argument("--chunk", type=int, default=4096, help="response tokens per LM-head chunk of ours")
    ap.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                    help="run each variant in its own process (default with more than one variant): no kernel "
                         "patch, compile cache or allocator state leaks from one variant into the next; on CPU "
                         "it reports each one's peak RSS")
    ap.add_argument("--variant-timeout", type=float, default=300, help="seconds one isolated variant may take")
    ap.add_argument("--out")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    isolate = a.isolate if a.isolate is not None else len(a.impl) > 1
    _, tok = load_model(a.model)
    pairs = make_pairs(tok, a.pairs, a.seq_len, a.prompt_len)
    results = {}
    for impl in a.impl:
        if isolate:
            results[impl] = _run_isolated(a, impl)
            print(impl, json.dumps(results[impl]), flush=True)
            continue
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            if impl.split("-")[0] == "ours":
                opts = parse_ours(impl, a.micro_pairs)
                model, _ = load_model(a.model)
                results[impl] = bench_ours(model.to(device), pairs, a.steps, a.warmup, device, chunk=a.chunk, **opts)
            elif impl == "naive":
                model, _ = load_model(a.model)
                ref, _ = load_model(a.model)
                results[impl] = bench_naive(model.to(device), ref.to(device).eval(), pairs, a.steps, a.warmup, device)
            elif impl in ("trl", "trl-pre"):
                results[impl] = bench_trl(a.model, tok, pairs, a.steps, a.warmup, device, impl == "trl-pre", a.seq_len)
        except ImportError as exc:
            results[impl] = {"skipped": f"{type(exc).__name__}: {exc}"}
        model = ref = None
        print(impl, json.dumps(results[impl]), flush=True)
    print(f"\ndevice: {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}; "
          f"{a.pairs} pairs x {a.seq_len} tokens; {a.steps} timed steps after {a.warmup} warm-up")
    for mine in [impl for impl in results if impl.startswith("ours")]:
        base = results.get(mine, {})
        for other in ("naive", "trl", "trl-pre"):
            r = results.get(other, {})
            if "tokens_per_s" in base and "tokens_per_s" in r:
                mem = "peak_rss_gib" if "peak_rss_gib" in base and "peak_rss_gib" in r else "peak_gib"
                print(f"{mine} vs {other}: {base['tokens_per_s'] / r['tokens_per_s']:.2f}x tokens/s, "
                      f"{'peak RSS' if mem == 'peak_rss_gib' else 'peak memory'} {base[mem]:.2f} vs {r[mem]:.2f} GiB")
    # model FLOPs utilisation: a training step costs ~6 N FLOPs per token (forward 2N + backward 4N;
    # attention's sequence-length term ignored), against the device's dense bf16 peak
    n_params = sum(p.numel() for p in load_model(a.model)[0].parameters())
    for impl, r in results.items():
        if "tokens_per_s" in r and device.type == "cuda":
            # the tokens the model ran on: ours-prefix runs each prompt once a pair
            ran = r["tokens_per_s"] * r.get("model_tokens_per_step", r["tokens_per_step"]) / r["tokens_per_step"]
            r["mfu"] = 6 * n_params * ran / (a.peak_tflops * 1e12)
            print(f"{impl}: MFU {r['mfu']:.1%} (6 x {n_params / 1e6:.0f}M params x model tokens/s / "
                  f"{a.peak_tflops:g} TFLOP/s)")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
