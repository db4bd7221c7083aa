"""The policy's log-probs under real FSDP2 sharding, on 2 CPU processes (gloo).

accelerate selects FSDP only on GPUs (an FSDP config runs as data parallel on CPU, see
test_distributed.py), so this drives torch's `fully_shard` directly, wrapping as the shipped
configs/accelerate/fsdp.yaml does (each decoder layer, then the root): what it checks is the part of the
trainer that sharding can break — the chunked, checkpointed response-only log-softmax that reads the
tied output embedding inside the root's forward and recomputes it in backward — and that the
gradient lives on the parameters FSDP2 puts in place, which is why the trainer clips over the prepared
module's parameters.
"""

import json
from pathlib import Path

import pytest

from conftest import BIN, free_port, run


def test_logprobs_and_gradients_under_fsdp2_match_the_unsharded_model(tiny_sft, env, tmp_path):
    env = {**env, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = run([str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                str(free_port()), str(Path(__file__).with_name("fsdp2_worker.py")), str(tiny_sft), str(tmp_path)],
               tmp_path, env)
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in rows] == [0, 1], proc.stdout + proc.stderr[-2000:]
    for r in rows:
        assert r["sharded"]
        assert r["logprob_diff"] < 1e-4
        assert r["grad_diff"] < 1e-4 * max(1.0, r["grad_scale"])
        assert r["norm_sharded"] == pytest.approx(r["norm"], rel=1e-4)
        # FSDP2 put new parameters in place of every one captured before sharding, and the gradients
        # land on the new ones only: clipping the old list would clip nothing
        assert r["replaced"] == r["n_params"] > 0
        assert not r["old_params_have_grads"]
