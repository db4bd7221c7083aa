"""The HF sampling backends: length-sorted batched `generate` (with a static KV cache too) and transformers'
continuous batching."""

import json
import subprocess
import sys

import pytest

from gamealign.io import read_jsonl, write_jsonl
from gamealign.prompts import builtin_prompts


def _talkative(tiny_sft):
    """The tiny model with its weights spread out, so that greedy answers are distinct non-empty texts (the
    random-init model answers every prompt with the same few tokens or none, which any backend would match)."""
    import torch

    from gamealign.models import load_model

    model, tok = load_model(tiny_sft)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model, tok


def test_continuous_batching_greedy_matches_batched_generate(tiny_sft):
    """Greedy decoding is deterministic, so both backends must write the same rows, including
    prompts of different lengths decoding side by side (4 at a time, 6 prompts)."""
    from gamealign.sampling import generate, generate_continuous

    model, tok = _talkative(tiny_sft)
    prompts = builtin_prompts(6, seed=1)
    assert len({len(p["messages"][0]["content"]) for p in prompts}) > 1
    common = dict(temperature=1.0, top_p=1.0, max_new_tokens=12, batch_size=4, seed=0, greedy=True)
    continuous, stats = generate_continuous(model, tok, prompts, 1, **common)
    batched, _ = generate(model, tok, prompts, 1, **common)
    assert len({r["text"] for r in batched}) == 6 and all(r["n_tokens"] > 0 for r in batched)
    assert continuous == batched
    assert stats["n_sequences"] == 6 and stats["new_tokens"] == sum(r["n_tokens"] for r in continuous)


def test_static_cache_writes_the_rows_of_batched_generate(tiny_sft):
    """hf-static pads every batch to the job's longest prompt and decodes with a static KV cache: greedy, the rows
    are those of `hf` (batches of 4 and a last one of 2, prompts of different lengths); sampled with the same seed,
    the same draws (the logits agree, so the seeded sampler picks the same tokens)."""
    from gamealign.sampling import generate

    model, tok = _talkative(tiny_sft)
    prompts = builtin_prompts(6, seed=1)
    common = dict(temperature=1.0, top_p=1.0, max_new_tokens=12, batch_size=4, seed=0)
    batched, _ = generate(model, tok, prompts, 1, greedy=True, **common)
    static, stats = generate(model, tok, prompts, 1, greedy=True, static_cache=True, **common)
    assert len({r["text"] for r in batched}) == 6
    assert static == batched and stats["n_sequences"] == 6
    sampled, _ = generate(model, tok, prompts, 3, **common)
    assert generate(model, tok, prompts, 3, static_cache=True, **common)[0] == sampled


@pytest.mark.parametrize("backend", ["hf-continuous", "hf-static"])
def test_sample_stage_with_an_hf_backend_is_seeded_and_complete(backend, tiny_sft, tmp_path):
    from gamealign.cli import main

    prompts = builtin_prompts(3, seed=2)
    write_jsonl(tmp_path / "p.jsonl", prompts)
    params = json.dumps({"k": 4, "max_new_tokens": 8, "batch_size": 5, "temperature": 1.0, "top_p": 1.0})
    outs = []
    for name in ("a", "b"):
        rc = main(["sample", "--backend", backend, "--model", str(tiny_sft), "--prompts",
                   str(tmp_path / "p.jsonl"), "--out", str(tmp_path / f"{name}.jsonl"), "--params", params,
                   "--stats", str(tmp_path / f"{name}.stats.json"), "--seed", "3"])
        assert rc in (0, None)
        outs.append(read_jsonl(tmp_path / f"{name}.jsonl"))
    rows = outs[0]
    assert [(r["prompt_id"], r["k"]) for r in rows] == [(p["id"], k) for p in prompts for k in range(4)]
    assert all(set(r) == {"prompt_id", "k", "text", "n_tokens", "finish_reason"} for r in rows)
    assert all(0 <= r["n_tokens"] <= 8 and r["finish_reason"] in ("stop", "length") for r in rows)
    assert len({r["text"] for r in rows}) > 1  # sampled, not one response copied K times
    assert outs[1] == rows  # same seed, same samples
    assert json.loads((tmp_path / "a.stats.json").read_text())["backend"] == backend


def test_ct2_backend_writes_the_hf_rows_greedy_and_a_seeded_contract_sampled(tiny_sft, tmp_path):
    """CTranslate2 (float32, the policy itself): greedy rows equal the HF backend's, text and all; sampled rows
    follow the contract, differ across k and repeat under the same seed (through the sample stage)."""
    import pytest

    pytest.importorskip("ctranslate2")
    from gamealign.cli import main
    from gamealign.models import load_model
    from gamealign.sampling import generate
    from gamealign.sampling_ct2 import generate_ct2

    model, tok = load_model(tiny_sft)
    prompts = builtin_prompts(6, seed=1)
    common = dict(temperature=1.0, top_p=1.0, max_new_tokens=12, batch_size=4, seed=0, greedy=True)
    ct2, stats = generate_ct2(tiny_sft, prompts, 1, threads=1, **common)
    assert ct2 == generate(model, tok, prompts, 1, **common)[0]
    assert stats["n_sequences"] == 6 and stats["convert_s"] > 0
    ct2_k3, _ = generate_ct2(tiny_sft, prompts[:2], 3, threads=1, **common)   # greedy K > 1: K copies, as HF's
    assert ct2_k3 == generate(model, tok, prompts[:2], 3, **common)[0]
    write_jsonl(tmp_path / "p.jsonl", prompts[:3])
    params = json.dumps({"k": 4, "max_new_tokens": 8, "batch_size": 5, "temperature": 1.0, "top_p": 0.95})
    outs = []
    for name in ("a", "b"):
        argv = ["sample", "--backend", "ct2", "--model", str(tiny_sft), "--prompts", str(tmp_path / "p.jsonl"),
                "--out", str(tmp_path / f"{name}.jsonl"), "--params", params, "--threads", "1",
                "--stats", str(tmp_path / f"{name}.stats.json"), "--seed", "3"]
        if name == "a":
            assert main(argv) in (0, None)
        else:   # a fresh process, as a sampling job: ctranslate2 is loaded before torch (sys.modules keeps the order)
            code = (f"import sys; from gamealign.cli import main; assert main({argv!r}) == 0; m = list(sys.modules); "
                    "print('ORDER', m.index('ctranslate2') < m.index('torch'))")
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            assert "ORDER True" in proc.stdout
        outs.append(read_jsonl(tmp_path / f"{name}.jsonl"))
    rows = outs[0]
    assert [(r["prompt_id"], r["k"]) for r in rows] == [(p["id"], k) for p in prompts[:3] for k in range(4)]
    assert all(set(r) == {"prompt_id", "k", "text", "n_tokens", "finish_reason"} for r in rows)
    assert all(0 <= r["n_tokens"] <= 8 and r["finish_reason"] in ("stop", "length") for r in rows)
    assert all(r["finish_reason"] == "stop" or r["n_tokens"] == 8 for r in rows)
    assert len({r["text"] for r in rows}) > 1 and outs[1] == rows
    assert json.loads((tmp_path / "a.stats.json").read_text())["backend"] == "ct2"


def test_ct2_samples_of_one_prompt_are_independent_draws_from_the_policy(tiny_sft, tmp_path, monkeypatch):
    """The ct2 backend draws a prompt's K samples as CTranslate2 hypotheses of one prefill (num_hypotheses=K):
    they must still be independent draws from π. On a copy of the tiny model with its final norm scaled ×10
    (one first token then carries 0.36 of the mass, the rest spreads over the vocabulary), the first tokens of
    K = 1500 samples of one prompt match the model's exact next-token distribution at temperatures 1 and 0.8:
    the top token's frequency and the mean exact log-probability of the drawn tokens (E_π[log π] = −entropy)
    each within 4 standard errors, and hundreds of distinct tokens (copies of one draw would give one). The
    drawn token ids are read where the backend turns them into rows (texts are stripped, so "\\n" reads "")."""
    import pytest
    import torch

    pytest.importorskip("ctranslate2")
    from gamealign import sampling_ct2
    from gamealign.models import load_model
    from gamealign.sampling import chat_texts
    from gamealign.sampling_ct2 import generate_ct2

    drawn = []

    def row(tokenizer, prompt_id, kk, seq, stop_ids):
        drawn.append(seq[0])
        return real_row(tokenizer, prompt_id, kk, seq, stop_ids)

    real_row = sampling_ct2._row
    monkeypatch.setattr(sampling_ct2, "_row", row)

    model, tok = load_model(tiny_sft)
    with torch.no_grad():
        model.model.norm.weight.mul_(10.0)
    peaked = tmp_path / "peaked"
    model.save_pretrained(peaked)
    tok.save_pretrained(peaked)
    prompt = builtin_prompts(1, seed=4)
    enc = tok(chat_texts(tok, prompt)[0], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**enc).logits[0, -1].double()
    k = 1500
    for temperature in (1.0, 0.8):
        logp = torch.log_softmax(logits / temperature, -1)
        p = logp.exp()
        top = int(p.argmax())
        assert 0.2 < p[top] < 0.95   # peaked, but with mass elsewhere
        drawn.clear()
        rows, _ = generate_ct2(peaked, prompt, k, temperature=temperature, top_p=1.0, max_new_tokens=1,
                               batch_size=64, seed=5, threads=1)
        assert [r["k"] for r in rows] == list(range(k)) and all(r["n_tokens"] <= 1 for r in rows)
        first = torch.tensor(drawn)
        assert len(first) == k
        freq, se = float((first == top).double().mean()), float((p[top] * (1 - p[top]) / k).sqrt())
        assert abs(freq - float(p[top])) < 4 * se, (temperature, freq, float(p[top]))
        mean_logp, entropy = float(logp[first].mean()), float(-(p * logp).sum())
        sd = float(((p * (logp + entropy) ** 2).sum() / k).sqrt())
        assert abs(mean_logp + entropy) < 4 * sd, (temperature, mean_logp, -entropy)
        assert len(set(first.tolist())) > 100


def _sample(tmp_path, tiny_sft, name, params, *extra, backend="hf"):
    from gamealign.cli import main
    rc = main(["sample", "--backend", backend, "--model", str(tiny_sft), "--prompts", str(tmp_path / "p.jsonl"),
               "--out", str(tmp_path / f"{name}.jsonl"), "--params", json.dumps(params), "--threads", "1",
               "--stats", str(tmp_path / f"{name}.stats.json"), "--seed", "3", *extra])
    assert rc in (0, None)
    return tmp_path / f"{name}.jsonl"


def test_two_shards_merge_into_one_jobs_rows_and_greedy_texts(tiny_sft, tmp_path):
    """sampling.shards: 2 jobs, each a contiguous share of the prompts, joined by merge-samples: the same rows in
    the same order with the same contract as one job's; greedy, the same texts; sampled (one random stream per
    HF job), each shard with its own seed."""
    from gamealign.cli import main

    prompts = builtin_prompts(5, seed=4)
    write_jsonl(tmp_path / "p.jsonl", prompts)
    for greedy, params in ((True, {"max_new_tokens": 8, "batch_size": 8}),
                           (False, {"k": 3, "max_new_tokens": 8, "batch_size": 8, "temperature": 1.0, "top_p": 1.0})):
        flag = ["--greedy"] if greedy else []
        tag = "g" if greedy else "s"
        one = read_jsonl(_sample(tmp_path, tiny_sft, f"one{tag}", params, *flag))
        parts = [_sample(tmp_path, tiny_sft, f"part{tag}{i}", params, *flag, "--shard", str(i), "--shards", "2")
                 for i in range(2)]
        assert [len(read_jsonl(p)) for p in parts] == ([2, 3] if greedy else [6, 9])   # 5 prompts: 2 + 3
        rc = main(["merge-samples", "--prompts", str(tmp_path / "p.jsonl"), "--shards", *map(str, parts),
                   "--shard-stats", *[str(p).replace(".jsonl", ".stats.json") for p in parts],
                   "--out", str(tmp_path / f"merged{tag}.jsonl"), "--stats", str(tmp_path / f"merged{tag}.stats.json")])
        assert rc in (0, None)
        merged = read_jsonl(tmp_path / f"merged{tag}.jsonl")
        assert [(r["prompt_id"], r["k"]) for r in merged] == [(r["prompt_id"], r["k"]) for r in one]
        assert all(set(r) == set(one[0]) for r in merged)
        stats = json.loads((tmp_path / f"merged{tag}.stats.json").read_text())
        assert stats["n_sequences"] == len(one) and len(stats["shards"]) == 2
        if greedy:
            assert merged == one
        else:
            assert stats["shards"][0]["seed"] != stats["shards"][1]["seed"]


def test_merge_refuses_overlapping_or_missing_shards(tmp_path):
    import pytest

    from gamealign.io import DataError
    from gamealign.sampling import merge_shards

    prompts = [{"id": "a"}, {"id": "b"}]
    row = lambda pid, k=0: {"prompt_id": pid, "k": k, "text": "x"}   # noqa: E731
    assert merge_shards(prompts, [[row("b"), row("a", 1), row("a")]], ["s0"]) == [row("a"), row("a", 1), row("b")]
    with pytest.raises(DataError, match="s1: prompt a was sampled by s0 too"):
        merge_shards(prompts, [[row("a"), row("b")], [row("a")]], ["s0", "s1"])
    with pytest.raises(DataError, match="no samples for 1 prompt"):
        merge_shards(prompts, [[row("a")]], ["s0"])


def test_every_backend_the_schema_offers_resolves_and_every_hf_backend_is_in_the_schema():
    """The schema's sampling.backend enum (the CLI's --backend choices) and the code's HF_BACKENDS agree: a new HF
    backend added in one place and not the other fails here, not in a user's study."""
    from gamealign.config import schema_choices
    from gamealign.sampling import HF_BACKENDS, hf_generator
    from gamealign.sampling_vllm import resolve_backend

    offered = schema_choices("sampling.backend")
    assert set(HF_BACKENDS) <= set(offered)
    assert set(offered) - set(HF_BACKENDS) == {"auto", "ct2", "vllm"}  # the ones resolve_backend decides itself
    for name in HF_BACKENDS:
        assert resolve_backend(name) == name and callable(hf_generator(name))
    assert resolve_backend("auto") in offered
