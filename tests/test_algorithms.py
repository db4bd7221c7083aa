import math
import random

import numpy as np
import pytest
import torch

from gamealign.algorithms import REGISTRY, Group, get_algorithm
from gamealign.algorithms.base import best_worst, tournament
from gamealign.algorithms.dpo import dpo_loss
from gamealign.algorithms.inpo import inpo_loss


def test_registry_has_the_end_to_end_algorithms():
    assert {"dpo", "inpo"} <= set(REGISTRY)
    with pytest.raises(KeyError, match="algorithms.nope"):
        get_algorithm("nope", {})


def test_the_registry_is_torch_free():
    """Snakemake reads the algorithms' declarations (online, self-play, comparison plan) at parse time."""
    import subprocess
    import sys

    code = "import sys, gamealign.algorithms as a; assert 'torch' not in sys.modules, 'torch'; print(len(a.REGISTRY))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and int(proc.stdout) >= 8, proc.stderr


def test_comparison_plans_are_declared():
    plans = {name: cls.comparison_plan({}) for name, cls in REGISTRY.items()}
    assert plans["wind"] == "disjoint" and plans["inpo"] == "tournament"
    assert {plans[a] for a in ("dpo", "ipo", "iterative_dpo", "sppo", "bon_distill", "spac")} == {"all"}
    assert REGISTRY["inpo"].comparison_plan({"pairs": "best_worst"}) == "all"


def test_dpo_loss_by_hand():
    t = lambda v: torch.tensor([v])
    loss, h = dpo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.5), beta=0.5)
    # h = (−1 + 2) − (−3 + 2.5) = 1.5 ; loss = −log σ(0.75)
    assert math.isclose(h.item(), 1.5, abs_tol=1e-6)
    assert math.isclose(loss.item(), math.log1p(math.exp(-0.75)), rel_tol=1e-6)


def test_inpo_loss_by_hand():
    t = lambda v: torch.tensor([v])
    loss, h = inpo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.5), t(-1.5), t(-2.0), eta=0.5, rho=0.25)
    # h = 2 − 0.25·0.5 − 0.75·0.5 = 1.5 ; target 1/(2η) = 1 ; loss = 0.25
    assert math.isclose(h.item(), 1.5, abs_tol=1e-6)
    assert math.isclose(loss.item(), 0.25, abs_tol=1e-6)


def _group(P):
    P = np.asarray(P, dtype=float)
    return Group("p", [f"y{i}" for i in range(len(P))], P)


def test_best_worst_by_win_rate():
    P = [[0.5, 0.9, 0.8], [0.1, 0.5, 0.4], [0.2, 0.6, 0.5]]
    assert best_worst(_group(P)) == (0, 1)
    assert best_worst(_group(np.full((3, 3), 0.5))) is None


def test_tournament_finds_champion_and_worst_of_a_total_order():
    # y0 ≻ y1 ≻ … ≻ y7 strictly: the champion is y0, the losers' bracket ends at y7
    n = 8
    P = np.array([[0.5 if i == j else (0.9 if i < j else 0.1) for j in range(n)] for i in range(n)])
    for seed in range(10):
        assert tournament(_group(P), random.Random(seed)) == (0, n - 1)


def test_tournament_handles_odd_k():
    P = np.array([[0.5, 1, 1], [0, 0.5, 1], [0, 0, 0.5]])
    w, l = tournament(_group(P), random.Random(0))
    assert P[w, l] > 0.5


def test_sppo_win_rate_is_the_authors_with_self_estimator_by_default():
    """Hand case, K = 4: the authors' P̂ (uclaml/SPPO compute_prob.py) is the row sum of the K × K matrix
    with P(y ≻ y) = ½ divided by K; the leave-one-out estimate divides the other K − 1 by K − 1."""
    P = np.array([[0.5, 0.9, 0.8, 0.6],
                  [0.1, 0.5, 0.7, 0.2],
                  [0.2, 0.3, 0.5, 0.4],
                  [0.4, 0.8, 0.6, 0.5]])
    g = Group("p", ["a", "b", "c", "d"], P)
    assert np.allclose(g.win_rates(include_self=True), [2.8 / 4, 1.5 / 4, 1.4 / 4, 2.3 / 4])
    assert np.allclose(g.win_rates(), [2.3 / 3, 1.0 / 3, 0.9 / 3, 1.8 / 3])
    # the self term shrinks every target towards ½ by (K − 1)/K
    assert np.allclose(g.win_rates(include_self=True) - 0.5, (g.win_rates() - 0.5) * 3 / 4)
    rng = random.Random(0)
    authors = get_algorithm("sppo", {"eta": 1000.0}).build_examples([g], rng)[0]
    loo = get_algorithm("sppo", {"eta": 1000.0, "win_rate": "loo"}).build_examples([g], rng)[0]
    assert authors.responses == loo.responses == ["a", "c"]      # same best / worst either way
    assert np.allclose(authors.fields["win_rate"], [0.7, 0.35])
    assert np.allclose(loo.fields["win_rate"], [2.3 / 3, 0.3])


def test_ipo_length_normalisation_uses_mean_token_logprobs():
    algo = get_algorithm("ipo", {"tau": 0.1, "length_normalize": True})
    batch = {"logp": torch.tensor([[-4.0, -9.0]]), "ref": torch.tensor([[-6.0, -6.0]]),
             "ntok": torch.tensor([[2.0, 3.0]])}
    loss, metrics = algo.loss(batch)
    h = (-4 / 2 - -9 / 3) - (-6 / 2 - -6 / 3)          # = 1 + 1 = 2
    assert math.isclose(metrics["margin"], h, rel_tol=1e-6)
    assert math.isclose(loss.item(), (h - 1 / (2 * 0.1)) ** 2, rel_tol=1e-6)
    plain, _ = get_algorithm("ipo", {"tau": 0.1}).loss(batch)
    assert math.isclose(plain.item(), ((-4 + 9) - 0 - 5) ** 2, abs_tol=1e-6)


def test_lr_schedules_match_transformers():
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    from gamealign.training import lr_factor

    total, warm = 20, 2
    makers = {"constant": lambda o: get_constant_schedule_with_warmup(o, warm),
              "linear": lambda o: get_linear_schedule_with_warmup(o, warm, total),
              "cosine": lambda o: get_cosine_schedule_with_warmup(o, warm, total)}
    for kind, make in makers.items():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make(opt)
        for step in range(total):
            assert math.isclose(opt.param_groups[0]["lr"], lr_factor(step, total, warm, kind), abs_tol=1e-9), (kind, step)
            opt.step()
            sched.step()
    assert lr_factor(0, 10, 0, "linear") == 1.0 and lr_factor(5, 10, 0, "cosine") == pytest.approx(0.5)


def _random_group(k, seed, texts=None):
    rng = np.random.default_rng(seed)
    P = np.triu(rng.uniform(size=(k, k)), 1)
    P = P + np.tril(1 - P.T, -1)
    np.fill_diagonal(P, 0.5)
    return Group("p", texts or [f"y{i}" for i in range(k)], P)


@pytest.mark.parametrize("k", [4, 5, 8])
def test_each_algorithm_is_charged_for_the_comparisons_its_examples_read(k):
    """All pairs K(K−1)/2 for the win-rate algorithms; ⌊K/2⌋ for WIND (one label per disjoint pair); for INPO's
    tournament the matches played, K + ⌊K/2⌋ − 2 (first round ⌊K/2⌋, winners' bracket ⌈K/2⌉ − 1, losers'
    ⌊K/2⌋ − 1), plus the champion-vs-worst comparison when they never met."""
    for name, expect in [("dpo", {k * (k - 1) // 2}), ("ipo", {k * (k - 1) // 2}),
                         ("iterative_dpo", {k * (k - 1) // 2}), ("sppo", {k * (k - 1) // 2}),
                         ("bon_distill", {k * (k - 1) // 2}), ("wind", {k // 2}),
                         ("inpo", {k + k // 2 - 2, k + k // 2 - 1})]:
        for seed in range(5):
            g = _random_group(k, seed)
            params = {"eta": 1.0, "beta": 0.1} if name == "wind" else {}
            get_algorithm(name, params).build_examples([g], random.Random(seed))
            assert g.comparisons_read() in expect, (name, k, seed, g.read)
    # INPO reading exactly its matches: with a total order the champion is y0 and the worst y_{K−1}
    P = np.array([[0.5 if i == j else float(i < j) for j in range(k)] for i in range(k)])
    g = Group("p", [f"y{i}" for i in range(k)], P)
    assert tournament(g, random.Random(0)) == (0, k - 1) and len(g.read) in (k + k // 2 - 2, k + k // 2 - 1)


def test_identical_responses_are_not_charged_and_a_tied_tournament_still_is():
    g = _random_group(4, 0, texts=["same", "same", "a", "b"])
    get_algorithm("dpo", {}).build_examples([g], random.Random(0))
    assert len(g.read) == 6 and g.comparisons_read() == 5      # the identical pair needed no judge
    tied = Group("p", ["a", "b", "c", "d"], np.full((4, 4), 0.5))
    assert get_algorithm("inpo", {}).build_examples([tied], random.Random(1)) == []
    assert g.comparisons_read() and tied.comparisons_read() >= 4   # matches were played, then the tie found


def test_wind_soft_labels_read_the_annotators_probability_and_equal_sampled_ones_for_a_binary_judge():
    """`label: soft` keeps each disjoint pair as planned with z = P(y ≻ y') (a tie: ½, regressed to h = 0); with
    0/1 preferences it builds the same (winner, loser, z = 1) examples as `label: sample` and draws the same random
    numbers, so the game track's runs are bit-identical under either."""
    soft, sample = get_algorithm("wind", {"eta": 1.0, "beta": 0.1, "label": "soft"}), \
        get_algorithm("wind", {"eta": 1.0, "beta": 0.1})
    tied = _group([[0.5, 0.5, 0.5, 0.5]] * 4)
    pairs = [(ex.responses, ex.fields["label"]) for ex in soft.build_examples([tied], random.Random(0))]
    assert [label for _, label in pairs] == [0.5, 0.5] and sorted(y for r, _ in pairs for y in r) == ["y0", "y1", "y2", "y3"]
    binary = _group([[0.5, 1, 0, 1], [0, 0.5, 1, 0], [1, 0, 0.5, 1], [0, 1, 0, 0.5]])
    r_soft, r_sample = random.Random(3), random.Random(3)
    by_soft = [(ex.responses if ex.fields["label"] == 1 else ex.responses[::-1]) for ex in soft.build_examples([binary], r_soft)]
    by_sample = [ex.responses for ex in sample.build_examples([binary], r_sample)]
    assert by_soft == by_sample and r_soft.random() == r_sample.random()
    assert {ex.fields["label"] for ex in sample.build_examples([tied], random.Random(0))} == {1.0}
    # the loss: z = ½ targets h = 0, z = 1 the sampled form's η/2
    from gamealign.algorithms.wind import wind_loss
    t = lambda v: torch.tensor([v])
    zero = [t(0.0)] * 6
    assert wind_loss(t(0.3), *zero[1:], eta=2.0, beta=0.1, z=t(0.5))[0].item() == pytest.approx(0.09)
    assert wind_loss(t(0.3), *zero[1:], eta=2.0, beta=0.1)[0].item() == pytest.approx((0.3 - 1.0) ** 2)


def test_wind_verdict_labels_are_the_annotators_majority_and_equal_soft_ones_for_a_binary_judge():
    """`label: verdict`: each disjoint pair as planned, z = 1 if P(y ≻ y') > ½, 0 if < ½, ½ on a tie — a panel's 2-of-3
    majority is a sure label (the sampled one is wrong one time in three); for a 0/1 judge it is `soft` exactly."""
    verdict, soft = get_algorithm("wind", {"label": "verdict"}), get_algorithm("wind", {"label": "soft"})
    third = _group(np.where(np.eye(4) > 0, 0.5, np.where(np.triu(np.ones((4, 4))) > 0, 2 / 3, 1 / 3)))  # y_i ≻ y_j 2:1, i < j
    examples = verdict.build_examples([third], random.Random(0))
    assert len(examples) == 2   # whichever disjoint pairs the plan draws, the label is P's side of ½: sure, not sampled
    for ex in examples:
        i, j = (int(y[1:]) for y in ex.responses)
        assert ex.fields["label"] == float(i < j)
    tied = _group(np.full((4, 4), 0.5))
    assert [ex.fields["label"] for ex in verdict.build_examples([tied], random.Random(0))] == [0.5, 0.5]
    binary = _group([[0.5, 1, 0, 1], [0, 0.5, 1, 0], [1, 0, 0.5, 1], [0, 1, 0, 0.5]])
    as_verdict = [(ex.responses, ex.fields["label"]) for ex in verdict.build_examples([binary], random.Random(4))]
    as_soft = [(ex.responses, ex.fields["label"]) for ex in soft.build_examples([binary], random.Random(4))]
    assert as_verdict == as_soft


def test_wind_skipping_ties_drops_exactly_the_tied_pairs_and_keeps_the_other_labels():
    """`ties: skip`: a disjoint pair the annotator ties (P = ½) is not an example; every other pair is the one `keep`
    builds, with the same label from the same random draw (so the two variants' kept pairs are paired), under each
    label reading; the judge still reads both planned pairs."""
    # y0 ≻ y1 and y2 ≻ y3 at ⅔, every cross pair tied: whichever disjoint pairs the plan draws, some may tie
    P = np.full((4, 4), 0.5)
    P[0, 1], P[1, 0], P[2, 3], P[3, 2] = 2 / 3, 1 / 3, 2 / 3, 1 / 3
    sizes = set()
    for label in ("sample", "soft", "verdict"):
        for seed in range(6):
            keep_g, skip_g = _group(P), _group(P)
            keep_g.plan_seed = skip_g.plan_seed = seed   # the same pairing, a different one per seed
            r_keep, r_skip = random.Random(seed), random.Random(seed)
            kept = get_algorithm("wind", {"label": label}).build_examples([keep_g], r_keep)
            skipped = get_algorithm("wind", {"label": label, "ties": "skip"}).build_examples([skip_g], r_skip)
            decisive = [ex for ex in kept if not np.isclose(
                P[int(ex.responses[0][1:]), int(ex.responses[1][1:])], 0.5)]
            assert [(ex.responses, ex.fields) for ex in skipped] == [(ex.responses, ex.fields) for ex in decisive]
            assert r_keep.random() == r_skip.random()           # the tied pairs' draws were taken too
            assert skip_g.comparisons_read() == keep_g.comparisons_read() == 2
            sizes.add((len(kept), len(skipped)))
    assert {(2, 0), (2, 2)} <= sizes    # both pairings drawn: the two ties dropped, and two decisive pairs kept
    tied = _group(np.full((4, 4), 0.5))
    assert get_algorithm("wind", {"ties": "skip"}).build_examples([tied], random.Random(0)) == []
    assert len(get_algorithm("wind", {}).build_examples([tied], random.Random(0))) == 2
