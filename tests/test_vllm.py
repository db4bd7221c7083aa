"""The vLLM sampling backend: backend resolution everywhere; generation where vLLM and a GPU exist."""

import json

import pytest

from gamealign.sampling_vllm import BackendUnavailable, resolve_backend, vllm_usable

USABLE, REASON = vllm_usable()


def test_auto_backend_falls_back_to_hf_and_vllm_refuses_clearly_without_it():
    assert resolve_backend("hf") == "hf"
    if USABLE:
        assert resolve_backend("auto") == "vllm"
        return
    from gamealign.sampling_vllm import ct2_usable

    assert resolve_backend("auto") == ("ct2" if ct2_usable()[0] else "hf")      # no GPU here: the CPU backend
    with pytest.raises(BackendUnavailable, match=r"sampling.backend is 'vllm' but .*pip install -e '.\[vllm\]'"):
        resolve_backend("vllm")


def test_sample_stage_names_the_missing_backend(tiny_sft, tmp_path, capsys):
    if USABLE:
        pytest.skip("vLLM is usable here: the refusal path cannot be exercised")
    from gamealign.cli import main
    from gamealign.io import write_jsonl

    write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "messages": [{"role": "user", "content": "Hi"}]}])
    rc = main(["sample", "--backend", "vllm", "--model", str(tiny_sft), "--prompts", str(tmp_path / "p.jsonl"),
               "--out", str(tmp_path / "s.jsonl"), "--params", json.dumps({"k": 2, "max_new_tokens": 4,
                                                                            "batch_size": 2})])
    assert rc == 2 and "sampling.backend is 'vllm'" in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl").exists()


def test_every_prompt_gets_its_own_seed_from_the_job_seed():
    from gamealign.sampling_vllm import prompt_seeds

    prompts = [{"id": f"p{i}"} for i in range(50)]
    seeds = prompt_seeds(7, prompts)
    assert len(set(seeds)) == 50                                  # no two prompts share a random stream
    assert prompt_seeds(7, prompts[::-1]) == seeds[::-1]          # a prompt's seed does not depend on order
    assert prompt_seeds(8, prompts) != seeds                      # and follows the job seed


@pytest.mark.skipif(not USABLE, reason=f"vLLM backend not testable here: {REASON}")
def test_vllm_rows_follow_the_sampling_contract(tiny_sft, tmp_path):
    from gamealign.sampling_vllm import generate_vllm

    prompts = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Say something about {t}."}]}
               for i, t in enumerate(["tea", "rivers", "maps"])]
    rows, stats = generate_vllm(str(tiny_sft), prompts, 4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0,
                                gpu_memory_utilization=0.3)
    assert [(r["prompt_id"], r["k"]) for r in rows] == [(p["id"], k) for p in prompts for k in range(4)]
    for r in rows:
        assert r["finish_reason"] in ("stop", "length") and 0 <= r["n_tokens"] <= 8
        assert r["finish_reason"] == "stop" or r["n_tokens"] == 8
    assert stats["backend"] == "vllm" and stats["n_sequences"] == 12
    again, _ = generate_vllm(str(tiny_sft), prompts, 4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0,
                             gpu_memory_utilization=0.3)
    assert again == rows  # seeded


@pytest.mark.skipif(not USABLE, reason=f"vLLM backend not testable here: {REASON}")
def test_vllm_greedy_gives_one_row_per_prompt(tiny_sft):
    from gamealign.sampling_vllm import generate_vllm

    prompts = [{"id": "g", "messages": [{"role": "user", "content": "Count to three."}]}]
    rows, _ = generate_vllm(str(tiny_sft), prompts, 4, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=0,
                            greedy=True, gpu_memory_utilization=0.3)
    assert len(rows) == 1 and rows[0]["k"] == 0
