"""The preference-game track runs the study's own algorithm code (plans, example building, losses): with the
population of K = 2 outcomes enumerated (exact mode), one iteration lands on each online algorithm's closed form
from gamealign.tabular; sampled, it charges judge calls and samples as the study does."""

import numpy as np
import pytest
import torch

from gamealign import games as G
from gamealign import tabular as T
from gamealign.algorithms import get_algorithm


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def one_exact_iteration(algo_name, hp, game, pi_t):
    """The algorithm's own build_examples + loss on the enumerated K = 2 population of π_t."""
    algo = get_algorithm(algo_name, hp)
    groups, weight = G.exact_groups(game, pi_t, plan_seed=3)
    examples = algo.build_examples(groups, __import__("random").Random(0))
    theta = G.minimise_round(algo, examples, torch.log(torch.as_tensor(pi_t)), game.pi_ref, weight, max_iter=500)
    return torch.softmax(theta, -1).numpy()


def some_policy(game, seed):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(game.n) * 2, size=game.contexts)
    return pi / pi.sum(axis=1, keepdims=True)


CLOSED_FORMS = {
    "inpo": ({"eta": 0.5, "rho": 0.2}, lambda pi, P, ref: T.inpo_update(pi, ref, P, 0.5, 0.2)),
    "wind": ({"eta": 2.0, "beta": 0.1}, lambda pi, P, ref: T.wind_update(pi, ref, P, 2.0, 0.1)),
    "ipo": ({"tau": 0.5}, lambda pi, P, ref: T.ipo_update(ref, pi, P, 0.5)),
}


@pytest.mark.parametrize("family", G.FAMILIES)
@pytest.mark.parametrize("algo", sorted(CLOSED_FORMS))
def test_an_exact_iteration_is_the_closed_form(family, algo):
    game = G.make_game(family, contexts=2, n=5, seed=11)
    pi_t = some_policy(game, 1)
    hp, update = CLOSED_FORMS[algo]
    got = one_exact_iteration(algo, hp, game, pi_t)
    want = np.stack([update(pi_t[c], game.P[c], game.pi_ref[c]) for c in range(game.contexts)])
    assert np.abs(got - want).max() < 1e-6


@pytest.mark.parametrize("family", G.FAMILIES)
def test_an_exact_iterative_dpo_iteration_is_the_bradley_terry_step(family):
    """Label-smoothed DPO against π_t on pairs from π_t × π_t: π_{t+1} ∝ π_t exp(r/β), r the Bradley–Terry fit of
    the smoothed preferences weighted by π_t(y) π_t(y') — on an intransitive game too (where BT is misspecified)."""
    game = G.make_game(family, contexts=2, n=4 if family != "cyclic" else 5, seed=5)
    pi_t = some_policy(game, 2)
    beta, eps = 0.5, 0.1
    got = one_exact_iteration("iterative_dpo", {"beta": beta, "label_smoothing": eps}, game, pi_t)
    for c in range(game.contexts):
        P_smooth = (1 - eps) * game.P[c] + eps * (1 - game.P[c])
        r = T.fit_bradley_terry(P_smooth, np.outer(pi_t[c], pi_t[c]), iters=20000, lr=2.0)
        assert np.abs(got[c] - T.dpo_update(pi_t[c], r, beta)).max() < 1e-5


def test_an_exact_bon_iteration_is_best_of_two():
    """A deterministic ranking (P ∈ {0, 1}): BoN distillation of K = 2 samples lands on BoN_2(π_t) — the pair of
    identical samples included (its best of 2 is that sample)."""
    n = 5
    rank = np.array([3, 0, 4, 1, 2])
    P = np.where(rank[:, None] > rank[None, :], 1.0, 0.0)
    np.fill_diagonal(P, 0.5)
    game = G.Game("bt", P[None], np.full((1, n), 1 / n))
    pi_t = some_policy(game, 3)
    got = one_exact_iteration("bon_distill", {}, game, pi_t)
    assert np.abs(got[0] - T.bon_update(pi_t[0], rank, 2)).max() < 1e-6


def test_exact_runs_follow_the_closed_form_iteration():
    """`run` in exact mode, three iterations: the gaps are those of the closed-form iterates."""
    game = G.make_game("cyclic", contexts=2, n=3, seed=2)
    hp = {"eta": 1.0, "beta": 0.1}
    rows = G.run("wind", hp, game, iterations=3, k=2, groups_per_context=0, seed=0, exact=True, max_iter=500)
    pi = game.pi_ref.copy()
    for t in range(1, 4):
        pi = np.stack([T.wind_update(pi[c], game.pi_ref[c], game.P[c], 1.0, 0.1) for c in range(2)])
        assert rows[t]["gap"] == pytest.approx(G.gap(game, pi, 0.1), abs=1e-7)
    assert rows[3]["judge_calls_cum"] == 0 and rows[0]["gap"] > rows[3]["gap"]


def test_exact_mode_is_refused_where_it_is_not_exact():
    game = G.make_game("bt", 1, 3, seed=0)
    with pytest.raises(ValueError, match="K = 2"):
        G.run("wind", {"eta": 1.0, "beta": 0.1}, game, iterations=1, k=4, groups_per_context=1, seed=0, exact=True)
    with pytest.raises(ValueError, match="online"):
        G.run("dpo", {"beta": 0.1}, game, iterations=1, k=2, groups_per_context=1, seed=0, exact=True)


def test_games_are_what_their_family_says():
    for family in G.FAMILIES:
        game = G.make_game(family, contexts=3, n=5, seed=4)
        assert np.allclose(game.P + game.P.transpose(0, 2, 1), 1.0)
        assert np.allclose(game.pi_ref.sum(axis=1), 1.0)
    cyc = G.make_game("cyclic", 1, 5, seed=4).P[0]
    assert np.allclose((cyc > 0.5).sum(axis=1), 2)   # each response beats exactly half of the others
    with pytest.raises(ValueError, match="odd"):
        G.make_game("cyclic", 1, 4, seed=0)
    with pytest.raises(ValueError, match="unknown family"):
        G.make_game("rps", 1, 3, seed=0)
    assert np.array_equal(G.make_game("general", 2, 4, 9).P, G.make_game("general", 2, 4, 9).P)


def test_sampled_runs_charge_what_the_plans_read():
    game = G.make_game("general", contexts=2, n=6, seed=1)
    kw = dict(iterations=3, k=4, groups_per_context=5, seed=7)
    wind = G.run("wind", {"eta": 1.0, "beta": 0.1}, game, **kw)
    sppo = G.run("sppo", {"eta": 1.0, "win_rate": "loo"}, game, **kw)
    dpo = G.run("dpo", {"beta": 0.1}, game, **kw)
    spac = G.run("spac", {"beta": 0.1, "lam": 1.0}, game, **kw)
    groups = 2 * 5
    for rows in (wind, sppo):
        assert [r["samples_cum"] for r in rows] == [0, groups * 4, 2 * groups * 4, 3 * groups * 4]
    # WIND: ⌊K/2⌋ = 2 comparisons per group, all pairs for SPPO (6); identical samples tie without a judge
    assert 0 < wind[3]["judge_calls_cum"] <= 3 * groups * 2 < sppo[3]["judge_calls_cum"] <= 3 * groups * 6
    # DPO: one annotated sample of π_ref, kept; SPAC adds unlabelled self-play samples every iteration
    assert dpo[1]["judge_calls_cum"] == dpo[3]["judge_calls_cum"] > 0
    assert dpo[3]["samples_cum"] == groups * 4
    assert spac[3]["judge_calls_cum"] == dpo[3]["judge_calls_cum"]
    assert spac[3]["samples_cum"] == groups * 4 * (1 + 3)
    assert G.run("wind", {"eta": 1.0, "beta": 0.1}, game, **kw) == wind   # seeded


def test_cyclic_games_separate_the_nash_learners_from_bradley_terry():
    """Must-show 2 in miniature: on a cyclic game, with 128 groups of K = 4 per context per iteration, WIND settles
    below a duality gap of 1e-2 and iterative DPO (a Bradley–Terry view of an intransitive game) never does."""
    game = G.make_game("cyclic", contexts=2, n=5, seed=3)
    kw = dict(iterations=25, k=4, groups_per_context=128, seed=1, tau=0.1)
    wind = G.run("wind", {"eta": 1.0, "beta": 0.1}, game, **kw)
    idpo = G.run("iterative_dpo", {"beta": 0.5, "label_smoothing": 0.1}, game, **kw)
    assert not np.isnan(G.settled(wind, 1e-2))
    assert np.isnan(G.settled(idpo, 1e-2)) and min(r["gap"] for r in idpo) > 0.05


def test_settled_needs_the_gap_to_stay_below():
    rows = [{"gap": g, "judge_calls_cum": i * 10} for i, g in enumerate([0.5, 0.005, 0.02, 0.008, 0.001])]
    assert G.settled(rows, 0.01) == 30
    assert np.isnan(G.settled(rows + [{"gap": 0.3, "judge_calls_cum": 50}], 0.01))


def test_threshold_table_medians_count_unsettled_runs_as_never():
    import pandas as pd
    runs = pd.DataFrame({"family": "bt", "algorithm": ["a"] * 3 + ["b"] * 3, "tau_own": 0.1, "seed": [0, 1, 2] * 2,
                         "judge_calls_to_threshold": [100, 200, np.nan, np.nan, np.nan, 50],
                         "samples_to_threshold": [1, 2, 3, np.nan, np.nan, 5], "final_gap": 0.0,
                         "final_exploitability": 0.0, "judge_calls_total": 300})
    t = G.threshold_table(runs).set_index("algorithm")
    assert t.loc["a", "judge_calls_median"] == 200 and t.loc["a", "settled"] == "2/3"
    assert t.loc["b", "judge_calls_median"] == np.inf and t.loc["b", "settled"] == "1/3"


def test_with_k2_inpo_and_wind_with_the_same_step_are_the_same_run():
    """At K = 2 INPO's tournament is one match and WIND's plan one pair: with the same closed-form step (ρ = ηβ,
    1/η_INPO = η_WIND) the two read the same labels, build the same examples and follow the same trajectory."""
    game = G.make_game("cyclic", contexts=2, n=5, seed=8)
    kw = dict(iterations=4, k=2, groups_per_context=32, seed=5)
    inpo = G.run("inpo", {"eta": 1.0, "rho": 0.1}, game, **kw)
    wind = G.run("wind", {"eta": 1.0, "beta": 0.1}, game, **kw)
    for a, b in zip(inpo, wind):
        assert a["judge_calls_cum"] == b["judge_calls_cum"] and a["gap"] == pytest.approx(b["gap"], abs=1e-6)
