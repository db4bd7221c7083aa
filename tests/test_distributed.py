"""Training on 2 processes through `accelerate launch` (gloo on CPU) matches 1 process."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import BIN, TINY_SIZES, free_port, run
from gamealign.config import validate_config
from gamealign.io import write_jsonl
from gamealign.prompts import builtin_prompts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def round_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp-data")
    prompts = builtin_prompts(5, seed=11)
    write_jsonl(d / "prompts.jsonl", prompts)
    rng = np.random.default_rng(1)
    samples, prefs = [], []
    for p in prompts:
        for k in range(3):
            samples.append({"prompt_id": p["id"], "k": k, "text": f"reply {k}: {p['meta']['topic']} " * (k + 1)})
        for i in range(3):
            for j in range(i + 1, 3):
                prefs.append({"prompt_id": p["id"], "i": i, "j": j, "p": float(rng.uniform())})
    write_jsonl(d / "samples.jsonl", samples)
    pd.DataFrame(prefs).to_parquet(d / "prefs.parquet", index=False)
    return d


def _train(launcher, d, tiny_sft, out, env, algorithm, micro=None, ref=None, shared_prefix=False):
    cfg = validate_config({"algorithms": {algorithm: {}}, "train": {
        "batch_size": 4, "micro_batch_size": micro, "epochs": 2, "lr": 1e-3, "max_length": 96,
        "checkpoint_every": 0, "shared_prefix": shared_prefix}}, check_paths=False)
    cmd = [*launcher, "train", "--algorithm", algorithm, "--hparams", json.dumps(cfg["algorithms"][algorithm]),
           "--train", json.dumps(cfg["train"]), "--init-model", str(tiny_sft), "--ref-model", str(ref or tiny_sft),
           "--prompts", str(d / "prompts.jsonl"), "--samples", str(d / "samples.jsonl"),
           "--prefs", str(d / "prefs.parquet"), "--out", str(out), "--seed", "5", "--threads", "2"]
    run(cmd, d, env)
    metrics = [json.loads(x) for x in (out / "train_metrics.jsonl").read_text().splitlines()]
    return metrics, load_file(out / "model.safetensors"), json.loads((out / "manifest.json").read_text())


def _assert_trained_alike(one, two):
    """A 1-process and a 2-process run of `_train` took the same steps and landed on the same weights."""
    (m1, w1, man1), (m2, w2, man2) = one, two
    assert man1["processes"] == 1 and man2["processes"] == 2
    assert len(m1) == len(m2) >= 3  # 5 prompts -> >= 5 examples, 2 epochs of batches of 4, last one uneven
    for a, b in zip(m1, m2):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-3, abs=1e-6)
        assert a["tokens"] == b["tokens"]
        # the logged metrics are the whole batch's, not the first process's share
        assert a.keys() == b.keys()
        for key in set(a) - {"step", "epoch", "loss", "grad_norm", "tokens"}:
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4), key
    assert man1["counts"]["train_tokens"] == man2["counts"]["train_tokens"]
    assert w1.keys() == w2.keys()
    for k in w1:
        # Adam normalises each coordinate: float-summation noise in a tiny gradient can move a weight
        # by a fraction of one step (lr = 1e-3); 1e-4 is a tenth of a step
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm,micro,shared_prefix", [("inpo", 1, False), ("inpo", None, True)])
def test_two_gloo_processes_match_one_process(round_data, tiny_sft, tmp_path, env, algorithm, micro, shared_prefix):
    """With micro=1 each process runs its 2 examples as 2 passes (gradient all-reduce only after the last).
    (DPO in one pass per process on 2 gloo processes is the fsdp.yaml case below: on CPU that config
    runs as this same data parallel.) With train.shared_prefix both runs use its rows, the 2-process run its
    per-process frozen log-probs gathered by example."""
    env = {**env, "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_DISABLE_RICH": "1"}
    one = _train([str(BIN / "gamealign")], round_data, tiny_sft, tmp_path / "one", env, algorithm,
                 shared_prefix=shared_prefix)
    two = _train([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                  "--main_process_port", str(free_port()), "-m", "gamealign"],
                 round_data, tiny_sft, tmp_path / "two", env, algorithm, micro, shared_prefix=shared_prefix)
    w1 = one[1]
    moved = max((w1[k] - load_file(Path(str(tiny_sft)) / "model.safetensors")[k]).abs().max().item()
                for k in w1 if k in load_file(Path(str(tiny_sft)) / "model.safetensors"))
    assert moved > 1e-4  # training changed the weights, so the comparison below means something
    _assert_trained_alike(one, two)


@pytest.fixture(scope="module")
def other_ref(tmp_path_factory):
    """A second tiny model (another seed): a reference model that differs from the starting one, as
    in every round after the first."""
    from gamealign.models import prepare_sft

    out = tmp_path_factory.mktemp("ref") / "sft"
    prepare_sft({"source": "tiny", "tiny": TINY_SIZES}, out, seed=1)
    return out


def _has_deepspeed() -> bool:
    import importlib.util

    return importlib.util.find_spec("deepspeed") is not None


@pytest.mark.slow
@pytest.mark.parametrize("config,engaged,algorithm,micro", [
    ("fsdp.yaml", "MULTI_CPU", "dpo", None),
    pytest.param("zero3.yaml", "DEEPSPEED", "inpo", 1, marks=pytest.mark.skipif(
        not _has_deepspeed(), reason="deepspeed is not installed (make install adds it; pip install deepspeed)")),
])
def test_shipped_accelerate_configs_match_one_process(round_data, tiny_sft, other_ref, tmp_path, env, config, engaged,
                                                      algorithm, micro):
    """The shipped FSDP and ZeRO-3 configs, launched on 2 processes, train as 1 process does, with a
    reference model that differs from the starting one (both are loaded by the trainer); under ZeRO-3
    INPO (frozen π_t and π_ref) with each process's share in 2 passes (DeepSpeed's accumulation).

    ZeRO-3 really runs on CPU (DeepSpeed's CPU accelerator over gloo): parameters, gradients and
    optimizer state are partitioned, and the saved model is gathered from the partitions. FSDP does
    not: accelerate selects FSDP only on GPUs and runs the config as gloo data parallel, so for it what
    is tested is the launch environment (ACCELERATE_USE_FSDP, FSDP_CPU_RAM_EFFICIENT_LOADING=true)
    reaching transformers' loading, exactly as on GPUs. When the trainer loaded its models after
    creating the Accelerator, every process but the first got all-zero weights from it there, half of
    the frozen log-probs were wrong, and step 0's DPO loss was 0.658 instead of log 2.
    """
    env = {**env, "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_DISABLE_RICH": "1"}
    one = _train([str(BIN / "gamealign")], round_data, tiny_sft, tmp_path / "one", env, algorithm, ref=other_ref)
    two = _train([str(BIN / "accelerate"), "launch", "--config_file", str(ROOT / "configs/accelerate" / config),
                  "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
                  "-m", "gamealign"], round_data, tiny_sft, tmp_path / "two", env, algorithm, micro, ref=other_ref)
    assert two[2]["distributed"] == engaged
    _assert_trained_alike(one, two)


def test_deepspeed_config_gets_the_micro_batch_and_train_clipping():
    from gamealign.training import configure_deepspeed

    cfg = {"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": "auto"}
    configure_deepspeed(cfg, 3, 0.5)
    assert cfg == {"train_micro_batch_size_per_gpu": 3, "gradient_clipping": 0.5}
    cfg = {}
    configure_deepspeed(cfg, 2, 1.0)
    assert cfg == {"train_micro_batch_size_per_gpu": 2, "gradient_clipping": 1.0}
    configure_deepspeed({"gradient_clipping": 1}, 2, 1.0)  # the same value, spelled as an int
    with pytest.raises(ValueError, match=r"gradient_clipping = 2\.0 .* train\.max_grad_norm is 1\.0"):
        configure_deepspeed({"gradient_clipping": 2.0}, 2, 1.0)
