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


def test_a_killed_round_resumes_from_its_checkpoint_and_matches(data, tiny_sft, tmp_path, monkeypatch):
    """Stop a round after 3 of 6 steps (as a kill would), rerun it: it resumes at step 3 and lands on
    the same weights and metrics as an uninterrupted round, learning-rate schedule (cosine with warm-up)
    included."""
    import torch

    from gamealign import training
    from gamealign.models import load_model

    d, groups = data
    cfg = validate_config({"train": {"batch_size": 2, "epochs": 3, "lr": 1e-3, "max_length": 96,
                                     "checkpoint_every": 1, "lr_scheduler": "cosine", "warmup_ratio": 0.2}},
                          check_paths=False)
    kw = dict(algorithm="dpo", hparams={"beta": 0.1}, train_cfg=cfg["train"], init_model=str(tiny_sft),
              ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups, seed=1)
    train_round(out_dir=str(tmp_path / "full"), **kw)

    real_save, calls = training.Checkpoint.save, {"n": 0}

    def save_then_die(self, *a, **k):
        real_save(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training.Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_round(out_dir=str(tmp_path / "resumed"), **kw)
    assert not (tmp_path / "resumed").exists() and (tmp_path / ".resumed.ckpt" / "state.pt").exists()
    monkeypatch.setattr(training.Checkpoint, "save", real_save)
    train_round(out_dir=str(tmp_path / "resumed"), **kw)
    assert not (tmp_path / ".resumed.ckpt").exists()

    full = [json.loads(x) for x in (tmp_path / "full/train_metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(x) for x in (tmp_path / "resumed/train_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed] == list(range(len(full)))
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in full], rel=1e-5)
    n = len(full)
    expected = [1e-3 * training.lr_factor(s, n, -(-n // 5), "cosine") for s in range(n)]  # warm-up ⌈0.2 n⌉
    assert [r["lr"] for r in full] == pytest.approx(expected) and [r["lr"] for r in resumed] == pytest.approx(expected)
    assert expected[0] == 0 and max(expected) == pytest.approx(1e-3)
    a, _ = load_model(tmp_path / "full")
    b, _ = load_model(tmp_path / "resumed")
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_bad_preference_rows_name_file_and_row(tmp_path):
    import pandas as pd

    from gamealign.io import DataError, write_jsonl
    from gamealign.training import load_groups

    write_jsonl(tmp_path / "s.jsonl", [{"prompt_id": "a", "k": k, "text": f"t{k}"} for k in range(3)])
    pd.DataFrame({"prompt_id": ["a", "a"], "i": [0, 0], "j": [1, 2], "p": [0.7, 1.5]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet: row 2: p = 1\.5"):
        load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet")
    pd.DataFrame({"prompt_id": ["a"], "i": [0], "j": [7], "p": [0.5]}).to_parquet(tmp_path / "q.parquet")
    with pytest.raises(DataError, match=r"q\.parquet: row 1: response indices"):
        load_groups(tmp_path / "s.jsonl", tmp_path / "q.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable parquet"):
        load_groups(tmp_path / "s.jsonl", tmp_path / "bad.parquet")
    (tmp_path / "bad.jsonl").write_text('{"prompt_id": "a", "k": 0, "text": "x"}\n{"prompt_id": "a"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: missing field\(s\) k, text"):
        load_groups(tmp_path / "bad.jsonl")


def test_length_grouped_batches_cover_every_example_once_with_less_padding():
    import random

    from gamealign.training import batch_schedule

    lengths = [random.Random(i).randint(10, 500) for i in range(200)]
    plain = batch_schedule(lengths, 8, random.Random(0), group_by_length=False)
    grouped = batch_schedule(lengths, 8, random.Random(0), group_by_length=True)
    for batches in (plain, grouped):
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(len(b) == 8 for b in batches)

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(grouped) < 0.8 * padded(plain)
    assert batch_schedule(lengths, 8, random.Random(0), True) == grouped  # seeded


def train_variants(data, tiny_sft, tmp_path, name, setting, values, seed, **train):
    """{value: (metric rows, trained model)}: one round of algorithm `name` for each value of train.<setting>, all
    else equal (lr 1e-3, rows of at most 96 tokens, no mid-round checkpoints, the `train` overrides)."""
    from gamealign.models import load_model

    d, groups = data
    selfplay = [Group(g.prompt_id, [f"self-play {i}" for i in range(3)]) for g in groups]
    runs = {}
    for value in values:
        cfg = validate_config({"algorithms": {name: {}}, "train": {
            setting: value, "lr": 1e-3, "max_length": 96, "checkpoint_every": 0, **train}}, check_paths=False)
        out = tmp_path / f"{setting}-{value}"
        train_round(algorithm=name, hparams=cfg["algorithms"][name], train_cfg=cfg["train"], init_model=str(tiny_sft),
                    ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups,
                    selfplay_groups=selfplay, out_dir=str(out), seed=seed)
        runs[value] = ([json.loads(x) for x in (out / "train_metrics.jsonl").read_text().splitlines()],
                       load_model(out)[0])
    return runs


def assert_same_weights(model_a, model_b, atol=1e-4):
    """Adam: float noise moves a weight by < 0.1 step (lr 1e-3)."""
    import torch

    for (n, p), (_, q) in zip(model_a.named_parameters(), model_b.named_parameters()):
        assert torch.allclose(p, q, atol=atol), n


def assert_same_steps(rows_a, model_a, rows_b, model_b):
    """Two runs took the same steps: the same metric rows (losses, metrics, token counts, gradient norms) within
    float noise, at least two of them, and the same weights."""
    assert len(rows_a) == len(rows_b) >= 2
    for a, b in zip(rows_a, rows_b):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    assert_same_weights(model_a, model_b)


@pytest.mark.parametrize("name", ["dpo", "sppo"])
def test_micro_batches_give_the_full_batch_step(name, data, tiny_sft, tmp_path):
    """batch 3 in micro-batches of 2 (passes of 2 + 1, and 1 + a zero-weight pad for the last batch of 1)
    takes the same steps as batch 3 in one pass: same losses, metrics, gradient norms and weights."""
    runs = train_variants(data, tiny_sft, tmp_path, name, "micro_batch_size", (None, 2), seed=4, batch_size=3, epochs=2)
    (full, m_full), (micro, m_micro) = runs[None], runs[2]
    assert len(full) == len(micro) == 4  # 4 examples → batches of 3 and 1, two epochs
    for a, b in zip(full, micro):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    assert_same_weights(m_full, m_micro)


def test_compiled_blocks_train_like_eager(data, tiny_sft, tmp_path):
    """train.compile (torch.compile of each decoder block, dynamic shapes) takes the same steps as eager."""
    from torch._dynamo.utils import counters

    counters.clear()
    runs = train_variants(data, tiny_sft, tmp_path, "dpo", "compile", (False, True), seed=2, batch_size=2)
    assert counters["stats"]["unique_graphs"] >= 2  # dynamo really compiled (no-grad and training forwards)
    (eager, m_eager), (comp, m_comp) = runs[False], runs[True]
    assert len(eager) == len(comp) == 2
    for a, b in zip(eager, comp):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3, abs=1e-6)
    assert_same_weights(m_eager, m_comp)


@pytest.mark.parametrize("name", ["dpo", "spac", "bon_distill"])
def test_shared_prefix_rows_train_like_padded_rows(name, data, tiny_sft, tmp_path):
    """train.shared_prefix (each example's prompt once, its responses behind a block mask) takes the same
    steps as the padded layout: same losses, metrics, token counts, gradient norms and weights. Pairs (DPO),
    offline pairs with self-play samples (SPAC), one response per example (BoN)."""
    import torch

    from gamealign.models import load_model

    runs = train_variants(data, tiny_sft, tmp_path, name, "shared_prefix", (False, True), seed=4, batch_size=3,
                          epochs=2)
    (padded, m_padded), (shared, m_shared) = runs[False], runs[True]
    assert_same_steps(padded, m_padded, shared, m_shared)
    assert any(not torch.equal(p, q) for p, q in zip(m_padded.parameters(), load_model(tiny_sft)[0].parameters()))


def test_a_round_whose_groups_all_tie_publishes_the_starting_model_and_says_why(data, tiny_sft, tmp_path):
    """Every group ties (P = ½ everywhere): no pair to learn from. The round does not stop the study: it
    publishes π_t unchanged, its manifest says `skipped` and why, and the next round can start from it."""
    from gamealign.models import load_model

    d, groups = data
    tied = [Group(g.prompt_id, g.responses, np.full((4, 4), 0.5)) for g in groups]
    cfg = validate_config({"train": {"batch_size": 2, "max_length": 96, "lr": 1e-3}}, check_paths=False)
    info = train_round(algorithm="dpo", hparams={"beta": 0.1}, train_cfg=cfg["train"], init_model=str(tiny_sft),
                       ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=tied,
                       out_dir=str(tmp_path / "model"), seed=0)
    out = tmp_path / "model"
    man = json.loads((out / "manifest.json").read_text())
    assert man["skipped"] == info["skipped"] == "no training examples: all 4 groups tied or were empty"
    assert man["counts"]["train_steps"] == 0 and man["final_loss"] is None
    assert (out / "train_metrics.jsonl").read_text() == ""
    assert (out / "model.safetensors").read_bytes() == (tiny_sft / "model.safetensors").read_bytes()
    load_model(out)  # a usable checkpoint for the next round


def test_the_checkpoint_identity_changes_with_the_training_data(data):
    from gamealign.algorithms.base import Example
    from gamealign.training import examples_hash

    a = [Example("p1", ["good", "bad"]), Example("p2", ["x", "y"], {"win_rate": [0.7, 0.3]})]
    b = [Example("p1", ["good", "bad"]), Example("p2", ["x", "y"], {"win_rate": [0.7, 0.4]})]
    c = [Example("p1", ["good", "worse"]), Example("p2", ["x", "y"], {"win_rate": [0.7, 0.3]})]
    assert examples_hash(a) == examples_hash(list(a))
    assert len({examples_hash(a), examples_hash(b), examples_hash(c)}) == 3  # same size, different content


@pytest.mark.parametrize("name, hparams", [("dpo", {}), ("wind", {}), ("wind", {"label": "soft"}),
                                           ("wind", {"label": "verdict"})])
def test_steps_per_round_holds_every_algorithm_to_the_same_number_of_updates(name, hparams, data, tiny_sft, tmp_path):
    """DPO gets one pair per prompt (4 examples), WIND ⌊K/2⌋ = 2 (8 examples): by epochs they would take
    2 and 4 steps of 2 examples; with train.steps_per_round both take exactly 5 (epochs repeat, reshuffled).
    Each is charged only the judge comparisons its examples read. (WIND with soft or verdict labels: the same
    counts, its per-example label carried into the loss.)"""
    d, groups = data
    cfg = validate_config({"algorithms": {name: hparams}, "train": {"batch_size": 2, "max_length": 96, "lr": 1e-3,
                                                                   "steps_per_round": 5}}, check_paths=False)
    info = train_round(algorithm=name, hparams=cfg["algorithms"][name], train_cfg=cfg["train"],
                       init_model=str(tiny_sft), ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"),
                       groups=groups, out_dir=str(tmp_path / "model"), seed=0,
                       counts={"charge_new_prefs": True, "judge_calls_cum_prev": 10, "judge_comparisons_made": 24})
    rows = [json.loads(x) for x in (tmp_path / "model/train_metrics.jsonl").read_text().splitlines()]
    assert info["counts"]["train_steps"] == len(rows) == 5
    # charged for what its examples read of the 4 groups of K = 4: all 6 pairs each (DPO), 2 disjoint (WIND)
    charged = {"dpo": 24, "wind": 8}[name]
    assert info["counts"]["judge_comparisons"] == charged and info["counts"]["judge_calls_cum"] == 10 + charged
    assert info["counts"]["judge_comparisons_made"] == 24
    assert info["counts"]["train_examples"] == {"dpo": 4, "wind": 8}[name]
    assert [r["epoch"] for r in rows] == {"dpo": [0, 0, 1, 1, 2], "wind": [0, 0, 0, 0, 1]}[name]


def test_a_lora_round_publishes_a_merged_checkpoint_equal_to_base_plus_adapter(data, tiny_sft, tmp_path):
    """train.peft: only the adapters train; the published model is the merged plain checkpoint (what sampling and
    the next round load), whose log-probs equal the base model's with the saved adapter applied."""
    import torch
    from peft import PeftModel

    from gamealign.logprobs import batch_sequences, sequence_logprobs, tokenize_pair
    from gamealign.models import load_model

    d, groups = data
    cfg = validate_config({"algorithms": {"dpo": {}}, "train": {
        "batch_size": 2, "max_length": 96, "lr": 5e-2, "steps_per_round": 3,
        "peft": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}}}, check_paths=False)
    info = train_round(algorithm="dpo", hparams=cfg["algorithms"]["dpo"], train_cfg=cfg["train"],
                       init_model=str(tiny_sft), ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"),
                       groups=groups, out_dir=str(tmp_path / "model"), seed=0)
    out = tmp_path / "model"
    assert (out / "adapter/adapter_config.json").exists() and (out / "model.safetensors").exists()
    base_params = sum(p.numel() for p in load_model(tiny_sft)[0].parameters())
    assert 0 < info["counts"]["trainable_parameters"] < base_params / 10
    merged, tok = load_model(out)                      # a plain checkpoint: no peft needed to load it
    base = load_model(tiny_sft)[0]
    with_adapter = PeftModel.from_pretrained(base, out / "adapter").eval()
    seqs = [tokenize_pair(tok, "Name a fruit.", text, 64) for text in ("An apple.", "A pear, ripe and sweet.")]
    ids, attn, resp = batch_sequences(seqs, tok.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        lp_merged = sequence_logprobs(merged, ids, attn, resp)
        lp_adapter = sequence_logprobs(with_adapter.get_base_model(), ids, attn, resp)
        lp_base = sequence_logprobs(load_model(tiny_sft)[0], ids, attn, resp)
    assert torch.allclose(lp_merged, lp_adapter, atol=1e-4)
    assert not torch.allclose(lp_merged, lp_base, atol=1e-3)    # the adapters learned something
    # the next round samples from the merged checkpoint and trains from it, like from any other
    from gamealign.sampling import generate
    rows, _ = generate(merged, tok, [{"id": "q", "messages": [{"role": "user", "content": "Name a fruit."}]}], 2,
                       temperature=1.0, top_p=1.0, max_new_tokens=6, batch_size=2, seed=0)
    assert [r["k"] for r in rows] == [0, 1]
    cfg2 = dict(cfg["train"], peft=dict(cfg["train"]["peft"]))
    info2 = train_round(algorithm="dpo", hparams=cfg["algorithms"]["dpo"], train_cfg=cfg2, init_model=str(out),
                        ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups,
                        out_dir=str(tmp_path / "model2"), seed=1)
    assert np.isfinite(info2["final_loss"])


def test_lora_refuses_trainable_layers(data, tiny_sft, tmp_path):
    d, groups = data
    cfg = validate_config({"train": {"peft": {}, "trainable_layers": 1}}, check_paths=False)
    with pytest.raises(ValueError, match="train.peft and train.trainable_layers"):
        train_round(algorithm="dpo", hparams={"beta": 0.1}, train_cfg=cfg["train"], init_model=str(tiny_sft),
                    ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups,
                    out_dir=str(tmp_path / "model"), seed=0)


UF = __import__("pathlib").Path(__file__).parent / "data" / "ultrafeedback_binarized_tiny.jsonl"


def test_an_ultrafeedback_file_drives_dpo_and_spac(tiny_sft, tmp_path):
    """offline_data.source: file — the dataset's pairs, in the study's formats, are DPO's and SPAC's examples:
    chosen vs rejected, charged no samples and no judge calls."""
    from gamealign.offline_data import read_rows, write_study_files
    from gamealign.training import load_groups

    params = {"source": "file", "path": str(UF), "limit": None}
    info = write_study_files(read_rows(params), tmp_path / "offline", params)
    assert info["rows"] == 6
    off = tmp_path / "offline"
    assert json.loads((off / "prefs.stats.json").read_text())["judge_comparisons"] == 0
    groups = load_groups(off / "samples.jsonl", off / "prefs.parquet")
    cfg = validate_config({"train": {"batch_size": 2, "max_length": 96, "lr": 1e-3, "steps_per_round": 2}},
                          check_paths=False)
    selfplay = [Group(g.prompt_id, [f"self-play {i}" for i in range(2)]) for g in groups]
    for name, hp in (("dpo", {"beta": 0.1}), ("spac", {"beta": 0.1, "lam": 1.0})):
        info = train_round(algorithm=name, hparams=hp, train_cfg=cfg["train"], init_model=str(tiny_sft),
                           ref_model=str(tiny_sft), prompts_path=str(off / "prompts.jsonl"), groups=groups,
                           selfplay_groups=selfplay, out_dir=str(tmp_path / name), seed=0)
        assert info["counts"]["train_examples"] == 6 and np.isfinite(info["final_loss"])
    # DPO's examples are (chosen, rejected): the dataset's label
    from gamealign.algorithms import get_algorithm
    ex = get_algorithm("dpo", {"beta": 0.1}).build_examples(load_groups(off / "samples.jsonl", off / "prefs.parquet"),
                                                             None)
    assert ex[0].responses == ["A banana is yellow.", "Blue."]


@pytest.mark.parametrize("bad, message", [
    ({"prompt": "Hi?"}, "missing field 'chosen'"),
    ({"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}],
      "rejected": [{"role": "user", "content": "Bye?"}, {"role": "assistant", "content": "No."}]},
     "do not share their prompt turns"),
    ({"chosen": [{"role": "user", "content": "Hi?"}], "rejected": [{"role": "user", "content": "Hi?"}]},
     "must end with a non-empty assistant answer"),
    ({"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Same."}],
      "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Same."}]}, "the same answer"),
])
def test_a_malformed_preference_row_is_refused_naming_file_and_row(tmp_path, bad, message):
    from gamealign.io import DataError
    from gamealign.offline_data import read_rows

    path = tmp_path / "prefs.jsonl"
    path.write_text(UF.read_text().splitlines()[0] + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=rf"{path}:3: .*{message}"):
        read_rows({"source": "file", "path": str(path)})


def _trunk_round(data, name, init, ref, out, cache_trunk, seed=4, shared_prefix=False):
    """One round of `name` with the top block of the tiny model's two trained (train.trainable_layers 1), the
    trunk cache on or off: (metric rows, manifest, model)."""
    from gamealign.models import load_model

    d, groups = data
    selfplay = [Group(g.prompt_id, [f"self-play {i}" for i in range(3)]) for g in groups]
    cfg = validate_config({"algorithms": {name: {}}, "train": {
        "cache_trunk": cache_trunk, "shared_prefix": shared_prefix, "trainable_layers": 1, "lr": 1e-3, "max_length": 96, "checkpoint_every": 0,
        "batch_size": 3, "epochs": 2}}, check_paths=False)
    train_round(algorithm=name, hparams=cfg["algorithms"][name], train_cfg=cfg["train"], init_model=str(init),
                ref_model=str(ref), prompts_path=str(d / "prompts.jsonl"), groups=groups, selfplay_groups=selfplay,
                out_dir=str(out), seed=seed)
    return ([json.loads(x) for x in (out / "train_metrics.jsonl").read_text().splitlines()],
            json.loads((out / "manifest.json").read_text()), load_model(out)[0])


def _assert_same_round(a, b):
    (rows_a, _, model_a), (rows_b, _, model_b) = a, b
    assert_same_steps(rows_a, model_a, rows_b, model_b)


@pytest.mark.parametrize("name,shared_prefix", [("dpo", False), ("wind", False), ("bon_distill", False),
                                                ("wind", True), ("spac", True)])
def test_the_trunk_cache_trains_like_the_full_forward_in_both_rounds(name, shared_prefix, data, tiny_sft, tmp_path,
                                                                    monkeypatch):
    """train.cache_trunk: the frozen trunk's outputs computed once (in π_t's pass; by a pass of its own for BoN,
    which reads no frozen log-probs) give the same steps as the full forward — losses, metrics (which hold the
    frozen log-probs' margins), gradient norms, weights. Round 2 starts from round 1's policy with π_ref the SFT
    model, whose trunk is the same: WIND's π_ref pass then runs only the top block on π_t's captured outputs, and
    DPO's π_ref pass (its only one) captures them. With train.shared_prefix the cache holds one row per example."""
    from gamealign.models import load_model

    first = {c: _trunk_round(data, name, tiny_sft, tiny_sft, tmp_path / f"r1-{c}", c, shared_prefix=shared_prefix)
             for c in (False, True)}
    _assert_same_round(first[False], first[True])
    assert [first[c][1]["kernels"]["trunk_cache"] for c in (False, True)] == [False, True]
    init = tmp_path / "r1-False"
    calls = {}   # forwards of each decoder block, per setting
    layer_cls = type(load_model(tiny_sft)[0].model.layers[0])
    forward = layer_cls.forward

    def counted(self, *args, **kwargs):
        calls[setting][self.self_attn.layer_idx] = calls[setting].get(self.self_attn.layer_idx, 0) + 1
        return forward(self, *args, **kwargs)

    second = {}
    monkeypatch.setattr(layer_cls, "forward", counted)
    for setting in (False, True):
        calls[setting] = {}
        second[setting] = _trunk_round(data, name, init, tiny_sft, tmp_path / f"r2-{setting}", setting, seed=5,
                                       shared_prefix=shared_prefix)
    _assert_same_round(second[False], second[True])
    assert second[True][1]["kernels"]["trunk_cache"] is True
    # with the cache the lower block ran in the capturing pass only, the top one in every pass and step as without
    # it (+ once for the check on the first batch, + BoN's capturing pass)
    assert 1 <= calls[True][0] < calls[False][0] == calls[False][1] < calls[True][1]


def test_the_trunk_cache_runs_a_reference_with_another_trunk_in_full(data, tiny_sft, tmp_path):
    """A π_ref whose lower block differs from π_t's cannot use π_t's trunk outputs: its pass runs the whole model
    (DPO then captures from a pass of π_t of its own), and the round equals the full forward's."""
    import torch

    from gamealign.models import load_model
    from gamealign.logprobs import TrunkCache

    model, tok = load_model(tiny_sft)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.mul_(1.5)
    other = tmp_path / "other-ref"
    model.save_pretrained(other)
    tok.save_pretrained(other)
    assert not TrunkCache.same_trunk(model, load_model(tiny_sft)[0], 1)
    assert TrunkCache.same_trunk(model, load_model(other)[0], 1)
    runs = [_trunk_round(data, "dpo", tiny_sft, other, tmp_path / f"dpo-{c}", c) for c in (False, True)]
    _assert_same_round(*runs)
    assert runs[1][1]["kernels"]["trunk_cache"] is True


def test_the_trunk_cache_says_where_it_cannot_apply(data, tiny_sft, tmp_path):
    """auto: off without train.trainable_layers (nothing is frozen); true: an error that names the reason. A
    top-block forward that does not reproduce the full one (here: a wrong trunk) is refused by name."""
    import torch

    from gamealign.logprobs import padded_rows, rows_logprobs
    from gamealign.models import load_model
    from gamealign.training import TrunkMismatch, _check_trunk

    d, groups = data
    for setting in ("auto", True):
        cfg = validate_config({"train": {"cache_trunk": setting, "batch_size": 2, "max_length": 96, "lr": 1e-3,
                                         "checkpoint_every": 0}}, check_paths=False)
        kwargs = dict(algorithm="dpo", hparams={"beta": 0.1}, train_cfg=cfg["train"], init_model=str(tiny_sft),
                      ref_model=str(tiny_sft), prompts_path=str(d / "prompts.jsonl"), groups=groups,
                      out_dir=str(tmp_path / f"m-{setting}"), seed=0)
        if setting is True:
            with pytest.raises(ValueError, match="train.cache_trunk is true, but train.trainable_layers is not set"):
                train_round(**kwargs)
        else:
            assert train_round(**kwargs)["kernels"]["trunk_cache"] is False
    model, tok = load_model(tiny_sft)
    rows = padded_rows([([1, 2, 3, 4, 5], 2), ([6, 7, 8], 1)], tok.pad_token_id)
    with torch.no_grad():
        full = rows_logprobs(model, rows)
        wrong = (1, torch.randn(2, 5, model.config.hidden_size))
        with pytest.raises(TrunkMismatch, match="do not reproduce the full forward's log-probs for model type 'llama'"):
            _check_trunk(model, rows, wrong, full, 1024, False)


def test_a_trunk_cache_that_does_not_reproduce_the_model_is_turned_off_or_refused(data, tiny_sft, tmp_path,
                                                                                    monkeypatch):
    """When the first batch's check fails, auto trains with the full forward (and says so); true stops."""
    import gamealign.training as training

    def mismatch(*args):
        raise training.TrunkMismatch("train.cache_trunk: (a test's mismatch)")

    monkeypatch.setattr(training, "_check_trunk", mismatch)
    rows, man, _ = _trunk_round(data, "wind", tiny_sft, tiny_sft, tmp_path / "auto", "auto")
    assert man["kernels"]["trunk_cache"] is False and len(rows) >= 2
    with pytest.raises(training.TrunkMismatch, match="a test's mismatch"):
        _trunk_round(data, "wind", tiny_sft, tiny_sft, tmp_path / "true", True)
