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
