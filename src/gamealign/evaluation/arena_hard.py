"""Arena-Hard-Auto scoring: every (model, baseline) pair judged in both orders, a Bradley–Terry fit
of the battles, and the model's predicted win rate against the baseline with a bootstrap CI.

A battle is (model_a, model_b, s) with s = P(a ≻ b) ∈ [0, 1] (the judge's probability; ties ½).
The BT model: P(a ≻ b) = σ(r_a − r_b), fitted by maximum likelihood with soft outcomes, the
baseline's rating fixed at 0. Score = σ(r_model − r_baseline), the predicted win rate, and a
percentile CI over `n_boot` bootstrap resamples (arena-hard-auto uses 100).

What is resampled matters. The two battles of one question (model shown first, baseline shown first)
are one observation of that question, perfectly correlated under an order-symmetric judge; resampling
them as independent battles (arena-hard-auto's scheme) makes the CI about √2 too narrow. The default
resamples questions, each with both of its battles (`unit="question"`); `unit="battle"` keeps the
official scheme for comparison with published numbers.
"""

from __future__ import annotations

import numpy as np


def fit_bradley_terry(battles: list[tuple[str, str, float]], anchor: str, iters: int = 100) -> dict[str, float]:
    """Ratings (natural-log odds scale) maximising Σ s log σ(r_a − r_b) + (1 − s) log σ(r_b − r_a)."""
    names = sorted({a for a, _, _ in battles} | {b for _, b, _ in battles})
    if anchor not in names:
        raise ValueError(f"anchor {anchor!r} is in no battle")
    idx = {n: i for i, n in enumerate(names)}
    A = np.array([idx[a] for a, _, _ in battles])
    B = np.array([idx[b] for _, b, _ in battles])
    S = np.array([s for _, _, s in battles], dtype=float)
    free = [i for i in range(len(names)) if i != idx[anchor]]
    r = np.zeros(len(names))
    ridge = 1e-6  # keeps all-win / all-loss records finite
    for _ in range(iters):  # Newton's method on the concave log-likelihood
        p = 1 / (1 + np.exp(-(r[A] - r[B])))
        g = np.zeros(len(names))
        np.add.at(g, A, S - p)
        np.add.at(g, B, p - S)
        w = p * (1 - p)
        H = np.zeros((len(names), len(names)))
        np.add.at(H, (A, A), -w)
        np.add.at(H, (B, B), -w)
        np.add.at(H, (A, B), w)
        np.add.at(H, (B, A), w)
        g -= ridge * r
        H -= ridge * np.eye(len(names))
        step = np.linalg.solve(H[np.ix_(free, free)], g[free])
        r[free] -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return {n: float(r[idx[n]]) for n in names}


def predicted_win_rate(ratings: dict[str, float], model: str, baseline: str) -> float:
    return float(1 / (1 + np.exp(-(ratings[model] - ratings[baseline]))))


def score(battles: list[tuple[str, str, float]], model: str, baseline: str, n_boot: int = 100,
          level: float = 0.95, seed: int = 0, questions: list[str] | None = None, unit: str = "question") -> dict:
    """`questions[i]` names the question of battle i; with unit "question" the bootstrap resamples
    questions (all battles of a drawn question go in together), with "battle" single battles."""
    if unit not in ("question", "battle"):
        raise ValueError(f"evaluation.arena_hard.bootstrap: {unit!r} is not question or battle")
    if unit == "question" and (questions is None or len(questions) != len(battles)):
        raise ValueError("a question-level bootstrap needs the question of every battle")
    point = predicted_win_rate(fit_bradley_terry(battles, baseline), model, baseline)
    rng = np.random.default_rng(seed)
    if unit == "question":
        by_q: dict[str, list[int]] = {}
        for i, q in enumerate(questions):
            by_q.setdefault(q, []).append(i)
        units = list(by_q.values())
    else:
        units = [[i] for i in range(len(battles))]
    boots = []
    for _ in range(n_boot):
        sample = [battles[i] for u in rng.integers(0, len(units), len(units)) for i in units[u]]
        if {model, baseline} <= {x for a, b, _ in sample for x in (a, b)}:
            boots.append(predicted_win_rate(fit_bradley_terry(sample, baseline), model, baseline))
    alpha = (1 - level) / 2
    return {"score": point, "ci_low": float(np.quantile(boots, alpha)), "ci_high": float(np.quantile(boots, 1 - alpha)),
            "n_battles": len(battles), "n_boot": n_boot, "ci_level": level, "bootstrap_unit": unit,
            "n_units": len(units)}
