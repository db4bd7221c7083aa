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
