"""Benchmark scoring on hand-computed cases, and the loaders on the real files in ../shared/data."""

import math
from pathlib import Path

import numpy as np
import pytest

from gamealign.evaluation import arena_hard as AH
from gamealign.evaluation.alpaca_eval_metrics import length_controlled, to_annotations
from gamealign.evaluation.benchmarks import load_alpaca_eval, load_arena_hard

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (the shared benchmark files)")


def test_bradley_terry_two_players_is_the_mean_outcome():
    battles = [("m", "base", 1.0), ("m", "base", 1.0), ("base", "m", 1.0), ("m", "base", 0.5)]
    # m wins 1 + 1 + 0 + 0.5 = 2.5 of 4 → predicted win rate 0.625 exactly
    r = AH.fit_bradley_terry(battles, "base")
    assert r["base"] == 0.0
    assert math.isclose(AH.predicted_win_rate(r, "m", "base"), 0.625, abs_tol=1e-6)
    assert math.isclose(r["m"], math.log(0.625 / 0.375), abs_tol=1e-5)


def test_bradley_terry_recovers_ratings_from_exact_soft_outcomes():
    true = {"base": 0.0, "a": 1.0, "b": -0.5}
    sig = lambda x: 1 / (1 + math.exp(-x))
    battles = [(x, y, sig(true[x] - true[y])) for x in true for y in true if x != y]
    r = AH.fit_bradley_terry(battles, "base")
    for k in true:
        assert math.isclose(r[k], true[k], abs_tol=1e-3)


def test_arena_hard_score_and_bootstrap_ci():
    rng = np.random.default_rng(0)
    battles = [("m", "base", float(s)) for s in rng.uniform(size=200) < 0.7]
    out = AH.score(battles, "m", "base", n_boot=100, seed=1, unit="battle")
    assert math.isclose(out["score"], np.mean([s for _, _, s in battles]), abs_tol=1e-6)
    assert out["ci_low"] < out["score"] < out["ci_high"] and out["n_boot"] == 100
    assert AH.score(battles, "m", "base", n_boot=100, seed=1, unit="battle") == out  # deterministic in its seed


def test_arena_hard_question_bootstrap_is_wider_than_the_battle_bootstrap_by_about_sqrt2():
    """Hand case: 400 questions, the model's win probability v_q the same in both orders (an order-symmetric
    judge). With two players the BT score is the mean of the model's win probabilities (hand check below),
    so the battle bootstrap's standard error is sd(v)/√(2n) and the question bootstrap's sd(v)/√n: √2 apart."""
    rng = np.random.default_rng(5)
    v = np.where(rng.uniform(size=400) < 0.6, 0.9, 0.2)
    battles, questions = [], []
    for q, p in enumerate(v):
        battles += [("m", "base", float(p)), ("base", "m", float(1 - p))]
        questions += [f"q{q}", f"q{q}"]
    by_q = AH.score(battles, "m", "base", n_boot=400, seed=2, questions=questions)
    by_b = AH.score(battles, "m", "base", n_boot=400, seed=2, unit="battle")
    assert math.isclose(by_q["score"], v.mean(), abs_tol=1e-6) and by_q["score"] == by_b["score"]
    assert by_q["bootstrap_unit"] == "question" and by_q["n_units"] == 400 and by_b["n_units"] == 800
    se = v.std() / math.sqrt(400)          # the question-level standard error, by hand
    width_q, width_b = by_q["ci_high"] - by_q["ci_low"], by_b["ci_high"] - by_b["ci_low"]
    assert math.isclose(width_q, 2 * 1.96 * se, rel_tol=0.2)
    assert math.isclose(width_b, 2 * 1.96 * se / math.sqrt(2), rel_tol=0.2)
    assert 1.2 < width_q / width_b < 1.7
    with pytest.raises(ValueError, match="question of every battle"):
        AH.score(battles, "m", "base", n_boot=10)


def test_length_controlled_winrate_matches_an_independent_glm_fit():
    """alpaca_eval's LC code path (offline formula) equals a plain logistic fit of the same GLM:
    preference ~ w·tanh(Δlen / sd) + b, LC = mean σ(b)."""
    rng = np.random.default_rng(3)
    n = 300
    ref_len = rng.integers(50, 400, n)
    mod_len = rng.integers(50, 800, n)
    x = np.tanh((ref_len - mod_len) / np.std(ref_len - mod_len, ddof=1))
    p = 1 / (1 + np.exp(-(0.3 - 1.5 * x)))            # longer model answers win more often
    wins = (rng.uniform(size=n) < p).astype(float)
    ann = to_annotations([f"q{i}" for i in range(n)], ["y" * k for k in mod_len], ["r" * k for k in ref_len], wins)
    lc = length_controlled(ann, offline=True)
    assert math.isclose(lc["win_rate"], 100 * wins.mean(), abs_tol=1e-9)
    # independent fit (near-unregularised, like alpaca_eval's C=100)
    from scipy.optimize import minimize

    def nll(w):
        z = w[0] * x + w[1]
        return np.sum(np.logaddexp(0, z) - wins * z) + 0.5 / 100 * (w ** 2).sum()

    w = minimize(nll, np.zeros(2), method="BFGS").x
    assert w[0] < 0  # the GLM sees the length effect
    assert math.isclose(lc["length_controlled_winrate"], 100 / (1 + math.exp(-w[1])), abs_tol=1.0)
    assert lc["length_controlled_winrate"] < lc["win_rate"]  # the length advantage is removed


@needs_shared
def test_alpaca_eval_loader_reads_the_real_805():
    prompts, refs = load_alpaca_eval(str(SHARED / "alpaca_eval/gpt4_1106_preview_outputs.json"))
    assert len(prompts) == len(refs) == 805
    assert prompts[0]["messages"][0]["content"].startswith("What are the names of some famous actors")
    assert {r["generator"] for r in refs} == {"gpt4_1106_preview"}
    assert len(load_alpaca_eval(str(SHARED / "alpaca_eval/gpt4_1106_preview_outputs.json"), limit=5)[0]) == 5


@needs_shared
def test_arena_hard_loader_reads_the_real_500_with_baseline_answers():
    prompts, refs = load_arena_hard(str(SHARED / "arena_hard_v0.1/question.jsonl"),
                                    str(SHARED / "arena_hard_v0.1/gpt-4-0314.jsonl"))
    assert len(prompts) == len(refs) == 500
    assert all(r["text"].strip() for r in refs) and {r["generator"] for r in refs} == {"gpt-4-0314"}
    assert prompts[0]["meta"]["cluster"]


def test_length_controlled_is_nan_with_a_reason_when_not_estimable():
    ann = to_annotations(["q"] * 4, ["a", "bb", "c", "dd"], ["x", "y", "z", "w"], [1, 0, 1, 0.5])
    out = length_controlled(ann)
    assert math.isnan(out["length_controlled_winrate"]) and "not estimable" in out["lc_glm"]
    assert math.isclose(out["win_rate"], 62.5)


def test_crossed_bootstrap_counts_seed_and_prompt_noise():
    """Hand cases: a constant matrix has a zero-width CI; two seeds that differ by 1 on every prompt give the
    resampled means 0, ½, 1 with probabilities ¼, ½, ¼ (so the 95% CI is [0, 1]) where a bootstrap over the
    pooled prompts alone would be nearly [0.3, 0.7]; with one seed it is the bootstrap over prompts."""
    from gamealign.evaluation.stats import bootstrap_mean_ci, crossed_bootstrap_ci

    assert crossed_bootstrap_ci(np.full((3, 5), 0.7)) == pytest.approx((0.7, 0.7, 0.7))
    x = np.array([[0.0] * 40, [1.0] * 40])
    assert crossed_bootstrap_ci(x) == pytest.approx((0.5, 0.0, 1.0))
    pooled = bootstrap_mean_ci(x.ravel())
    assert pooled[1] > 0.3 and pooled[2] < 0.7
    one = np.random.default_rng(1).uniform(size=(1, 200))
    m, lo, hi = crossed_bootstrap_ci(one)
    m2, lo2, hi2 = bootstrap_mean_ci(one[0])
    assert m == pytest.approx(m2) and lo == pytest.approx(lo2, abs=0.01) and hi == pytest.approx(hi2, abs=0.01)
    with pytest.raises(ValueError, match="missing cells"):
        crossed_bootstrap_ci([[0.1, np.nan]])


def test_a_panel_win_rate_splits_exactly_into_its_criteria(tmp_path):
    """Hand case, evaluation panel (constraints, relevance, complete): the per-criterion win rates average to the
    win rate, each row carries its votes, and a pair with an empty answer is the judge's whole verdict (on_empty
    'lose': 0 on every criterion)."""
    from gamealign.evaluation.winrate import judge_against_baseline
    from gamealign.io import read_jsonl, write_jsonl

    def prompt(i, text, topic, cons):
        return {"id": i, "messages": [{"role": "user", "content": text}], "meta": {"topic": topic, "constraints": cons}}

    because = [{"type": "include", "word": "because"}]
    write_jsonl(tmp_path / "p.jsonl", [prompt("a", "Why sailing? Include 'because'.", "sailing", because),
                                       prompt("b", "Why chess?", "chess", []), prompt("c", "Why tea?", "tea", []),
                                       prompt("d", "Why coffee?", "coffee", [])])
    answers = {"a": ("I love sailing because of the wind.", "Boats are fun"), "b": ("", "Chess is deep."),
               "c": ("Same answer.", "Same answer."), "d": ("Tea.", "Tea")}
    write_jsonl(tmp_path / "c.jsonl", [{"prompt_id": i, "text": c} for i, (c, _) in answers.items()])
    write_jsonl(tmp_path / "s.jsonl", [{"prompt_id": i, "text": s} for i, (_, s) in answers.items()])
    out = judge_against_baseline(prompts_path=tmp_path / "p.jsonl", candidate_path=tmp_path / "c.jsonl",
                                 baseline_path=tmp_path / "s.jsonl", out_json=tmp_path / "w.json",
                                 out_judgments=tmp_path / "j.jsonl", cache_path=tmp_path / "cache.sqlite",
                                 judge_cfg={"name": "panel", "criteria": ["constraints", "relevance", "complete"]})
    # votes by hand: a wins all three; b's empty answer loses all; c ties all; d ties constraints (none) and
    # relevance (no 'coffee' in either) and wins complete (ends with '.')
    rows = {r["prompt_id"]: r for r in read_jsonl(tmp_path / "j.jsonl")}
    assert rows["a"]["votes"] == {"constraints": 1.0, "relevance": 1.0, "complete": 1.0}
    assert rows["b"]["votes"] == {"constraints": 0.0, "relevance": 0.0, "complete": 0.0}
    assert rows["d"]["votes"] == {"constraints": 0.5, "relevance": 0.5, "complete": 1.0}
    by = {c: v["win_rate"] for c, v in out["by_criterion"].items()}
    assert by == pytest.approx({"constraints": 0.5, "relevance": 0.5, "complete": 0.625})
    assert out["win_rate"] == pytest.approx(sum(by.values()) / 3) == pytest.approx((1 + 0 + 0.5 + 2 / 3) / 4)
    assert all(v["ci_low"] <= v["win_rate"] <= v["ci_high"] for v in out["by_criterion"].values())
    one = judge_against_baseline(prompts_path=tmp_path / "p.jsonl", candidate_path=tmp_path / "c.jsonl",
                                 baseline_path=tmp_path / "s.jsonl", out_json=tmp_path / "w1.json",
                                 out_judgments=tmp_path / "j1.jsonl", judge_cfg={"name": "panel", "criteria": ["complete"]})
    assert "by_criterion" not in one and "votes" not in read_jsonl(tmp_path / "j1.jsonl")[0]


def test_the_criteria_table_is_left_out_not_partial_when_some_score_files_lack_votes(tmp_path):
    """A study whose held-out score files all lack votes (a judge other than a panel) has no criteria table; one
    where only some lack them (scored before votes were recorded) names them instead of tabling the others."""
    import json

    import pandas as pd

    from gamealign.report import StaleScores, collect_criteria

    with_votes = {"by_criterion": {"constraints": {"win_rate": 0.6, "ci_low": 0.5, "ci_high": 0.7}}}
    (tmp_path / "a.json").write_text(json.dumps(with_votes))
    (tmp_path / "b.json").write_text(json.dumps({}))
    df = lambda *srcs: pd.DataFrame([{"benchmark": "heldout", "algorithm": f"m{i}", "round": 1, "seed": 0,
                                      "source": str(tmp_path / s)} for i, s in enumerate(srcs)])
    assert collect_criteria(df("b.json", "b.json"), 0.95) is None
    with pytest.raises(StaleScores, match="b.json"):
        collect_criteria(df("a.json", "b.json"), 0.95)
    table = collect_criteria(df("a.json"), 0.95)
    assert table.iloc[0].constraints == 0.6 and table.iloc[0].constraints_ci_high == 0.7
