"""Per-sequence log-probabilities of response tokens, without full-vocabulary logits for every token.

Only the positions that predict a response token go through the LM head, in chunks of `chunk`
tokens; with gradients on, each chunk is recomputed in backward (activation checkpointing), so the
float logits alive at once are bounded by chunk × vocab.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def tokenize_pair(tokenizer, prompt_text: str, response: str, max_length: int,
                  finished: bool = True) -> tuple[list[int], int]:
    """(ids, n_prompt): chat-formatted prompt ids + response ids, + EOS only for a `finished` response (one
    cut at max_new_tokens never ended, so no log-prob may credit it with an end); the prompt is cut from
    the left."""
    p_ids = tokenizer(prompt_text, add_special_tokens=False).input_ids
    r_ids = tokenizer(response, add_special_tokens=False).input_ids + ([tokenizer.eos_token_id] if finished else [])
    r_ids = r_ids[: max_length - 1]
    keep = max_length - len(r_ids)
    p_ids = p_ids[-keep:] if keep > 0 else p_ids[:0]
    return p_ids + r_ids, len(p_ids)


def _selected_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight).float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def batch_sequences(seqs: list[tuple[list[int], int]], pad_id: int, device=None):
    """Right-pad (ids, n_prompt) pairs → input_ids, attention_mask, response_mask [N, L]."""
    width = max(len(ids) for ids, _ in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    resp = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, (ids, n_prompt) in enumerate(seqs):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attn[row, : len(ids)] = 1
        resp[row, n_prompt: len(ids)] = True
    return input_ids.to(device), attn.to(device), resp.to(device)


def _fused_selected_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log π(target) per token through liger-kernel's fused linear cross-entropy (Triton, CUDA only): the LM
    head, log-softmax and their backward in one chunked kernel, never holding a [tokens, vocab] float tensor.
    With reduction="none" it returns -log π(target) and recomputes its chunks in backward."""
    from liger_kernel.ops import LigerFusedLinearCrossEntropyFunction

    loss = LigerFusedLinearCrossEntropyFunction.apply(hidden, weight, targets, None, None, -100, 0.0, 0.0, "none")[0]
    return -loss.float()


def response_positions(response_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat, rows): the flat indices into [N * L] of the positions that predict a response token (position t
    predicts token t+1, found at flat + 1), and the row of each. Computed once, they let `sequence_logprobs`
    run without the host synchronisation of boolean indexing (which a CUDA graph cannot capture)."""
    predicts = torch.zeros_like(response_mask)
    predicts[:, :-1] = response_mask[:, 1:]
    flat = predicts.reshape(-1).nonzero().squeeze(1)
    return flat, flat // response_mask.shape[1]


def sequence_logprobs(model, input_ids, attention_mask, response_mask, chunk: int = 1024,
                      fused: bool = False, positions: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Sum of log π(y_t | x, y_<t) over response positions, one value per row ([N]).

    fused=True computes the per-token log-probs with liger-kernel's fused linear cross-entropy instead of
    our chunked, checkpointed LM head (same values up to bf16 rounding; CUDA only). `positions` is
    `response_positions(response_mask)`, precomputed. attention_mask may be None for right-padded rows: under
    a causal mask a real token never attends to the padding after it."""
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    weight = model.get_output_embeddings().weight
    flat, rows = positions if positions is not None else response_positions(response_mask)
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat)
    tgt = input_ids.reshape(-1).index_select(0, flat + 1)
    if fused and h.shape[0]:
        token_lp = _fused_selected_logprobs(h, weight, tgt)
    else:
        pieces = []
        for s in range(0, h.shape[0], chunk):
            hs, ts = h[s:s + chunk], tgt[s:s + chunk]
            if torch.is_grad_enabled() and hs.requires_grad:
                pieces.append(checkpoint(_selected_logprobs, hs, weight, ts, use_reentrant=False, preserve_rng_state=False))
            else:
                pieces.append(_selected_logprobs(hs, weight, ts))
        token_lp = torch.cat(pieces) if pieces else h.new_zeros(0, dtype=torch.float32)
    out = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=input_ids.device)
    return out.index_add(0, rows, token_lp)


class PolicyLogprobs(torch.nn.Module):
    """The policy as a module whose forward is `sequence_logprobs`, so that DDP / FSDP / DeepSpeed wrappers
    (which hook a module's forward) see every forward pass of training."""

    def __init__(self, model, chunk: int = 1024, fused: bool = False):
        super().__init__()
        self.model = model
        self.chunk = chunk
        self.fused = fused

    def forward(self, input_ids, attention_mask, response_mask):
        return sequence_logprobs(self.model, input_ids, attention_mask, response_mask, self.chunk, fused=self.fused)
