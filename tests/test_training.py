"""Every registered algorithm trains a round on the tiny model through the real trainer."""

import json

import numpy as np
import pytest

from gamealign.algorithms import REGISTRY, Group
from gamealign.config import validate_config
from gamealign.io import write_jsonl
from gamealign.prompts import builtin_prompts
from gamealign.training import TrainingDiverged, train_round


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    prompts = builtin_prompts(4, seed=3)
    write_jsonl(d / "prompts.jsonl", prompts)
    rng = np.random.default_rng(0)
    groups = []
    for p in prompts:
        P = np.triu(rng.uniform(size=(4, 4)), 1)
        P = P + np.tril(1 - P.T, -1)
        np.fill_diagonal(P, 0.5)
        groups.append(Group(p["id"], [f"answer {i} about {p['meta']['topic']}" for i in range(4)], P))
    return d, groups


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_algorithm_trains_one_round(name, data, tiny_sft, tmp_path):
    d, groups = data
    cfg = validate_config({"algorithms": {name: {}}, "train": {"batch_size": 2, "max_length": 96, "lr": 1e-3}},
                          check_paths=False)
    selfplay = [Group(g.prompt_id, [f"self-play {i}" for i in range(3)]) for g in groups]
    info = train_round(algorithm=name, hparams=cfg["algorithms"][name], train_cfg=cfg["train"],
                       init_model=str(tiny_sft), ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"),
                       groups=groups, selfplay_groups=selfplay, out_dir=str(tmp_path / "model"), seed=0)
    out = tmp_path / "model"
    assert (out / "model.safetensors").exists()
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["train_examples"] > 0 and man["counts"]["train_tokens"] > 0
    assert np.isfinite(info["final_loss"])
    rows = [json.loads(x) for x in (out / "train_metrics.jsonl").read_text().splitlines()]
    assert len(rows) == man["counts"]["train_steps"]


def test_nan_loss_stops_training_and_publishes_nothing(data, tiny_sft, tmp_path, monkeypatch):
    d, groups = data
    from gamealign.algorithms import dpo

    monkeypatch.setattr(dpo.DPO, "loss", lambda self, batch: (batch["logp"].sum() * float("nan"), {}))
    cfg = validate_config({}, check_paths=False)
    with pytest.raises(TrainingDiverged, match="loss is nan"):
        train_round(algorithm="dpo", hparams={"beta": 0.1}, train_cfg=cfg["train"], init_model=str(tiny_sft),
                    ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups,
                    out_dir=str(tmp_path / "model"), seed=0)
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".model.tmp-*"))
