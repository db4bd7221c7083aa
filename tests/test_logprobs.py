import torch

from gamealign.logprobs import batch_sequences, sequence_logprobs, tokenize_pair
from gamealign.models import load_model


def naive_logprobs(model, ids, attn, resp):
    logits = model(input_ids=ids, attention_mask=attn).logits.float()
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * resp[:, 1:]).sum(-1)


def test_chunked_logprobs_match_full_softmax_and_gradients(tiny_sft):
    model, tok = load_model(tiny_sft)
    seqs = [tokenize_pair(tok, "<|im_start|>user\nhi<|im_end|>\n", t, 64) for t in ["hello there", "a", "b c d e f"]]
    ids, attn, resp = batch_sequences(seqs, tok.pad_token_id)
    ours = sequence_logprobs(model, ids, attn, resp, chunk=3)
    ref = naive_logprobs(model, ids, attn, resp)
    assert torch.allclose(ours, ref, atol=1e-4)
    g1 = torch.autograd.grad(ours.sum(), model.get_output_embeddings().weight)[0]
    g2 = torch.autograd.grad(naive_logprobs(model, ids, attn, resp).sum(), model.get_output_embeddings().weight)[0]
    assert torch.allclose(g1, g2, atol=1e-4)


def test_truncation_keeps_the_response_and_cuts_the_prompt_from_the_left(tiny_sft):
    _, tok = load_model(tiny_sft)
    ids, n_prompt = tokenize_pair(tok, "word " * 100, "short answer", 20)
    assert len(ids) == 20 and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[n_prompt:-1]) == "short answer"


def _three_rows(tok):
    seqs = [tokenize_pair(tok, "<|im_start|>user\nhi<|im_end|>\n", t, 64) for t in ["hello there", "a", "b c d e f"]]
    return batch_sequences(seqs, tok.pad_token_id)


def test_precomputed_positions_and_no_mask_on_right_padding_give_the_same_logprobs(tiny_sft):
    """The CUDA-graph-safe path (response positions computed once, no attention mask on right-padded rows:
    a causal mask already keeps every real token from the padding after it) equals the masked path."""
    from gamealign.logprobs import response_positions

    model, tok = load_model(tiny_sft)
    ids, attn, resp = _three_rows(tok)
    assert (attn == 0).any()  # the rows really are padded
    plain = sequence_logprobs(model, ids, attn, resp, chunk=4)
    graphable = sequence_logprobs(model, ids, None, resp, chunk=4, positions=response_positions(resp))
    assert torch.allclose(plain, graphable, atol=1e-5)
    assert torch.allclose(plain, naive_logprobs(model, ids, attn, resp), atol=1e-4)


def test_fused_kernels_setting_is_resolved_for_the_machine(tiny_sft, capsys):
    import pytest

    from gamealign.training import resolve_fused_kernels

    model, _ = load_model(tiny_sft)
    cpu = torch.device("cpu")
    assert resolve_fused_kernels(False, model, cpu) is False
    assert resolve_fused_kernels("auto", model, cpu) is False
    assert "train.fused_kernels auto: off, no CUDA device" in capsys.readouterr().out
    with pytest.raises(ValueError, match="train.fused_kernels is true, but no CUDA device"):
        resolve_fused_kernels(True, model, cpu)


def test_liger_kernels_give_the_plain_logprobs_and_gradients(tiny_sft):
    """The trainer's GPU default (train.fused_kernels: auto) against the plain path: same per-sequence
    log-probs and gradients within bf16 rounding. Triton kernels: runs where CUDA and liger-kernel are."""
    import importlib.util

    import pytest

    if not torch.cuda.is_available() or importlib.util.find_spec("liger_kernel") is None:
        pytest.skip("needs CUDA and liger-kernel (the gpu extra); liger's kernels are Triton, not runnable on CPU")
    from gamealign.training import use_liger_kernels

    plain, tok = load_model(tiny_sft)
    fused, _ = load_model(tiny_sft)
    plain, fused = plain.cuda(), fused.cuda()
    use_liger_kernels(fused)
    ids, attn, resp = (t.cuda() for t in _three_rows(tok))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        a = sequence_logprobs(plain, ids, attn, resp, chunk=4)
        b = sequence_logprobs(fused, ids, attn, resp, chunk=4, fused=True)
    assert torch.allclose(a.float(), b.float(), rtol=2e-2, atol=5e-2), (a, b)
    a.sum().backward()
    b.sum().backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters()):
        scale = p.grad.abs().max().clamp_min(1e-6)
        assert (p.grad - q.grad).abs().max() / scale < 5e-2, name
    # train.shared_prefix's rows through the fused kernels (liger's RoPE reads the rows' position ids)
    from gamealign.logprobs import padded_rows, rows_logprobs, shared_prefix_rows

    examples = _pairs(tok)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        c = rows_logprobs(plain, padded_rows([q for ex in examples for q in ex], tok.pad_token_id, "cuda"), chunk=4)
        d = rows_logprobs(fused, shared_prefix_rows(examples, tok.pad_token_id, "cuda"), chunk=4, fused=True)
    assert torch.allclose(c.float(), d.float(), rtol=2e-2, atol=5e-2), (c, d)


def test_a_truncated_response_gets_no_end_token_and_a_finished_one_does(tiny_sft, tmp_path):
    from gamealign.algorithms.base import Example
    from gamealign.io import write_jsonl
    from gamealign.training import _encode, load_groups

    _, tok = load_model(tiny_sft)
    done, cut = tokenize_pair(tok, "Q", "an answer", 64), tokenize_pair(tok, "Q", "an answer", 64, finished=False)
    assert done[0][-1] == tok.eos_token_id and cut[0][-1] != tok.eos_token_id and done[0][:-1] == cut[0]
    # through the trainer's path: samples.jsonl's finish_reason → groups → encoded examples
    write_jsonl(tmp_path / "s.jsonl", [{"prompt_id": "p", "k": 0, "text": "short one", "finish_reason": "stop"},
                                       {"prompt_id": "p", "k": 1, "text": "long and cut", "finish_reason": "length"}])
    g = load_groups(tmp_path / "s.jsonl")[0]
    assert g.finished == [True, False]
    finished = {("p", y): f for y, f in zip(g.responses, g.finished)}
    (w, _), (l, _) = _encode(tok, [Example("p", ["short one", "long and cut"])], {"p": "Q"}, 64, finished)[0]
    assert w[-1] == tok.eos_token_id and l[-1] != tok.eos_token_id
    assert load_groups(tmp_path / "s.jsonl", drop_truncated=True)[0].responses == ["short one"]


def _pairs(tok):
    """Three examples of two responses each: a shared prompt, one prompt cut differently per response (the
    left cut of a long prompt), and responses of different lengths, one unfinished (no end token)."""
    q = "<|im_start|>user\nhi there<|im_end|>\n"
    return [[tokenize_pair(tok, q, "hello there", 64), tokenize_pair(tok, q, "a", 64)],
            [tokenize_pair(tok, "word " * 30, "b c d e f g h", 24), tokenize_pair(tok, "word " * 30, "i", 24)],
            [tokenize_pair(tok, q, "one two", 64, finished=False), tokenize_pair(tok, q, "one three four", 64)]]


def test_shared_prefix_rows_hold_each_prompt_once_and_give_the_padded_logprobs_and_gradients(tiny_sft):
    """train.shared_prefix against the padded layout: the same per-sequence log-probs and parameter gradients
    (float tolerance), the same response tokens scored, fewer tokens through the model."""
    from gamealign.logprobs import padded_rows, rows_logprobs, shared_prefix_rows

    model, tok = load_model(tiny_sft)
    examples = _pairs(tok)
    flat = [seq for ex in examples for seq in ex]
    padded, shared = padded_rows(flat, tok.pad_token_id), shared_prefix_rows(examples, tok.pad_token_id)
    # example 0 shares its whole prompt; example 1's prompts were cut to different lengths from the left, so
    # their common prefix is shorter than either prompt: the row still holds both sequences whole
    n0 = examples[0][0][1]
    assert shared.input_ids[0, :n0].tolist() == examples[0][0][0][:n0]
    assert shared.position_ids[0, n0].item() == n0  # response 1 continues the prompt's positions ...
    start2 = len(examples[0][0][0])
    assert shared.position_ids[0, start2].item() == n0  # ... and so does response 2, after response 1
    assert not shared.attention_mask[0, 0, start2, n0]  # response 2 does not see response 1
    assert shared.attention_mask[0, 0, start2, n0 - 1]  # but sees the prompt
    assert torch.equal(torch.bincount(shared.seq, minlength=6), torch.bincount(padded.seq, minlength=6))
    assert shared.input_ids.numel() < padded.input_ids.numel()

    a = rows_logprobs(model, padded, chunk=4)
    b = rows_logprobs(model, shared, chunk=4)
    assert torch.allclose(a, b, atol=1e-4), (a, b)
    assert torch.allclose(a, naive_logprobs(model, *batch_sequences(flat, tok.pad_token_id)), atol=1e-4)
    weights = torch.randn(6)  # a loss that weighs every sequence differently
    ga = torch.autograd.grad((a * weights).sum(), list(model.parameters()))
    gb = torch.autograd.grad((rows_logprobs(model, shared, chunk=4) * weights).sum(), list(model.parameters()))
    for (name, _), x, y in zip(model.named_parameters(), ga, gb):
        assert torch.allclose(x, y, atol=1e-4, rtol=1e-3), name


def test_shared_prefix_refuses_an_attention_implementation_that_reads_masks_differently(tiny_sft):
    import pytest

    from gamealign.logprobs import check_shared_prefix_support

    model, _ = load_model(tiny_sft)
    check_shared_prefix_support(model)  # the default: sdpa
    model.config._attn_implementation = "eager"
    with pytest.raises(ValueError, match="train.shared_prefix needs .* 'sdpa' \\(it is 'eager'\\)"):
        check_shared_prefix_support(model)
