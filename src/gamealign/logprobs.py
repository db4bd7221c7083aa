"""Per-sequence log-probabilities of response tokens, without full-vocabulary logits for every token.

Only the positions that predict a response token go through the LM head, in chunks of `chunk`
tokens; with gradients on, each chunk is recomputed in backward (activation checkpointing), so the
float logits alive at once are bounded by chunk × vocab.

Two row layouts feed it (`Rows`): `padded_rows`, one right-padded row per sequence, and
`shared_prefix_rows` (train.shared_prefix), one row per training example, in which the example's
responses share a single copy of their common prompt: [prompt | response 1 | response 2 | ...], each
response attending to the prompt and to itself only (a block 4-D mask) with its positions continuing
the prompt's. Same log-probs as the padded layout (tests/test_logprobs.py); fewer tokens through the
model: the prompt once per example instead of once per response, and no padding inside an example.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

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


def response_positions(response_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pred, tgt, seq) of right-padded rows: the flat indices into [N * L] of the positions that predict a
    response token, of the token each predicts (pred + 1), and the row of each. Computed once, they let
    `sequence_logprobs` run without the host synchronisation of boolean indexing (which a CUDA graph cannot
    capture)."""
    predicts = torch.zeros_like(response_mask)
    predicts[:, :-1] = response_mask[:, 1:]
    flat = predicts.reshape(-1).nonzero().squeeze(1)
    return flat, flat + 1, flat // response_mask.shape[1]


class Rows(NamedTuple):
    """One forward pass's input: token rows, their attention mask (2-D padding mask, a 4-D block mask, or None),
    position ids (None: 0, 1, ... per row), and for every response token the flat index of the position that
    predicts it (`pred`), its own flat index (`tgt`) and the sequence it belongs to (`seq`, 0 .. n_seqs-1)."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    pred: torch.Tensor
    tgt: torch.Tensor
    seq: torch.Tensor
    n_seqs: int


def padded_rows(seqs: list[tuple[list[int], int]], pad_id: int, device=None) -> Rows:
    """One right-padded row per (ids, n_prompt) sequence; sequence i is row i."""
    ids, attn, resp = batch_sequences(seqs, pad_id, device)
    return Rows(ids, attn, None, *response_positions(resp), len(seqs))


def shared_prefix_rows(examples: list[list[tuple[list[int], int]]], pad_id: int, device=None) -> Rows:
    """One row per example: the longest prefix its sequences share within their prompts, once, then each
    sequence's remaining tokens as a segment that sees the prefix and itself (causally) but no other segment,
    its position ids continuing from the prefix's end. Sequence j of example e is output e * n + j (n the
    example's number of sequences, equal for all examples), as `padded_rows` on the flattened list orders them.

    A segment's first response token is predicted from the last token before it — in the prefix when the
    prompt is wholly shared — exactly as in its own padded row. Padding after a row's last segment attends to
    itself only (an all-masked query row would give NaN), and no real token attends to it."""
    n = len(examples[0])
    layouts = []
    for seqs in examples:
        if len(seqs) != n:
            raise ValueError(f"shared_prefix_rows: examples with {n} and {len(seqs)} sequences in one batch")
        shared = min(n_prompt for _, n_prompt in seqs)
        first = seqs[0][0]
        for ids, _ in seqs[1:]:
            k = 0
            while k < shared and ids[k] == first[k]:
                k += 1
            shared = k
        layouts.append(shared)
    width = max(s + sum(len(ids) - s for ids, _ in seqs) for s, seqs in zip(layouts, examples))
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(examples), width), dtype=torch.long)
    segment = torch.full((len(examples), width), -1, dtype=torch.long)  # -1: the shared prefix
    pred, tgt, seq = [], [], []
    for e, (shared, seqs) in enumerate(zip(layouts, examples)):
        input_ids[e, :shared] = torch.tensor(seqs[0][0][:shared], dtype=torch.long)
        position_ids[e, :shared] = torch.arange(shared)
        at = shared
        for j, (ids, n_prompt) in enumerate(seqs):
            tail = len(ids) - shared
            input_ids[e, at:at + tail] = torch.tensor(ids[shared:], dtype=torch.long)
            position_ids[e, at:at + tail] = torch.arange(shared, len(ids))
            segment[e, at:at + tail] = j
            lo = max(n_prompt, 1)
            t = torch.arange(lo, max(lo, len(ids)))   # sequence j's response tokens, by their index in ids
            where = lambda t: e * width + torch.where(t < shared, t, at + t - shared)  # noqa: E731 — in the flat rows
            pred.append(where(t - 1))
            tgt.append(where(t))
            seq.append(torch.full_like(t, e * n + j))
            at += tail
        segment[e, at:] = torch.arange(n, n + width - at)  # each pad token its own segment: it sees itself only
    segment = segment.to(device)  # the [E, 1, W, W] mask is built where it is used
    causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
    sees = (segment[:, None, :] == -1) | (segment[:, :, None] == segment[:, None, :])  # [E, query, key]
    as_t = lambda xs: torch.cat(xs).to(device)  # noqa: E731
    return Rows(input_ids.to(device), (causal & sees)[:, None], position_ids.to(device), as_t(pred), as_t(tgt),
                as_t(seq), len(examples) * n)


def rows_logprobs(model, rows: Rows, chunk: int = 1024, fused: bool = False,
                  trunk: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Sum of log π(y_t | x, y_<t) over each sequence's response tokens, one value per sequence ([n_seqs]).

    fused=True computes the per-token log-probs with liger-kernel's fused linear cross-entropy instead of
    our chunked, checkpointed LM head (same values up to bf16 rounding; CUDA only). `trunk` = (n_top, hidden):
    the rows' input to the model's top n_top blocks, already computed (TrunkCache), so only those blocks run."""
    base = getattr(model, model.base_model_prefix)
    if trunk is None:
        hidden = base(input_ids=rows.input_ids, attention_mask=rows.attention_mask,
                      position_ids=rows.position_ids).last_hidden_state
    else:
        hidden = top_blocks(base, *trunk, rows.attention_mask, rows.position_ids)
    weight = model.get_output_embeddings().weight
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows.pred)
    tgt = rows.input_ids.reshape(-1).index_select(0, rows.tgt)
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
    out = torch.zeros(rows.n_seqs, dtype=torch.float32, device=rows.input_ids.device)
    return out.index_add(0, rows.seq, token_lp)


def top_blocks(base, n_top: int, hidden: torch.Tensor, attention_mask, position_ids) -> torch.Tensor:
    """The decoder `base`'s last hidden state computed from its top `n_top` blocks only, given their input
    `hidden` [N, L, H]: its own forward with the lower blocks taken out of `base.layers` for the call and `hidden`
    passed as the input embeddings — the causal mask, positions and final norm stay the model's. Llama-family
    decoders use inputs_embeds as they are; a model that rescales them would not match, which
    `TrunkCache.check` catches before training uses this."""
    layers = base.layers
    base.layers = torch.nn.ModuleList(list(layers)[-n_top:])
    try:
        return base(inputs_embeds=hidden, attention_mask=attention_mask, position_ids=position_ids,
                    use_cache=False).last_hidden_state
    finally:
        base.layers = layers


class TrunkCache:
    """The frozen trunk's output for every training sequence (train.cache_trunk).

    With train.trainable_layers = k, the embedding and the lower blocks are frozen and identical in π_θ, in π_t
    (the previous round's policy, trained only on top) and in π_ref (the SFT model): their output for a sequence
    is the same in every forward of a round. It is captured once — a forward pre-hook on the first trainable
    block, during the frozen log-probs' pass — kept per sequence (unpadded, on the model's device), and each
    later forward (the training steps; π_ref's log-probs when π_t's pass captured it) runs only the top k blocks
    and the LM head on it. The same maths as the full forward; values differ at float-rounding level where the
    rows' padding differs from the capturing pass's."""

    def __init__(self, n_top: int):
        self.n_top = n_top
        # a row's index → its trunk output [width, H]: rows are sequences (example * n_responses + response) in the
        # padded layout, examples with train.shared_prefix; stored with the capturing pass's padding, whose positions
        # no real token attends to
        self.hidden: dict[int, torch.Tensor] = {}

    @staticmethod
    def same_trunk(a, b, n_top: int) -> bool:
        """Whether two models' embeddings and lower blocks (all but the top n_top) hold identical tensors."""
        def trunk_tensors(model):
            base = getattr(model, model.base_model_prefix)
            yield from base.embed_tokens.state_dict().values()
            for layer in list(base.layers)[:-n_top]:
                yield from layer.state_dict().values()
        return all(x.shape == y.shape and torch.equal(x, y.to(x.device))
                   for x, y in zip(trunk_tensors(a), trunk_tensors(b), strict=True))

    @contextmanager
    def capture(self, model, row_ids: list[int]):
        """During one forward of the rows `row_ids` inside this context, store each row's input to the first
        trainable block."""
        base = getattr(model, model.base_model_prefix)

        def hook(_module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            for row, i in enumerate(row_ids):
                self.hidden[i] = hidden[row].detach().clone()
        handle = base.layers[len(base.layers) - self.n_top].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def padded(self, row_ids: list[int], width: int) -> tuple[int, torch.Tensor]:
        """(n_top, [len(row_ids), width, H]) for `rows_logprobs(trunk=…)`: the rows' trunk outputs cut or padded
        with zeros to `width` — only padding lies beyond a row's own length, and no real token attends to it."""
        first = self.hidden[row_ids[0]]
        out = first.new_zeros(len(row_ids), width, first.shape[-1])
        for row, i in enumerate(row_ids):
            h = self.hidden[i][:width]
            out[row, :h.shape[0]] = h
        return self.n_top, out


def sequence_logprobs(model, input_ids, attention_mask, response_mask, chunk: int = 1024,
                      fused: bool = False, positions: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """`rows_logprobs` of right-padded rows, one value per row ([N]). `positions` is
    `response_positions(response_mask)`, precomputed. attention_mask may be None for right-padded rows: under
    a causal mask a real token never attends to the padding after it."""
    positions = positions if positions is not None else response_positions(response_mask)
    return rows_logprobs(model, Rows(input_ids, attention_mask, None, *positions, input_ids.shape[0]), chunk, fused)


def check_shared_prefix_support(model) -> None:
    """train.shared_prefix hands the model a 4-D boolean mask, which transformers passes as it is to SDPA;
    other attention implementations read masks differently (eager adds a float mask, flash-attention takes
    none), so they are refused by name rather than silently mis-masked."""
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "sdpa":
        raise ValueError(f"train.shared_prefix needs the model's attention implementation to be 'sdpa' (it is "
                         f"{impl!r}): it passes a 4-D boolean block mask")


class PolicyLogprobs(torch.nn.Module):
    """The policy as a module whose forward is `rows_logprobs` (called with the fields of a `Rows`), so that
    DDP / FSDP / DeepSpeed wrappers (which hook a module's forward) see every forward pass of training."""

    def __init__(self, model, chunk: int = 1024, fused: bool = False):
        super().__init__()
        self.model = model
        self.chunk = chunk
        self.fused = fused

    def forward(self, input_ids, attention_mask, position_ids, pred, tgt, seq, n_seqs, trunk=None):
        return rows_logprobs(self.model, Rows(input_ids, attention_mask, position_ids, pred, tgt, seq, n_seqs),
                             self.chunk, fused=self.fused, trunk=trunk)
