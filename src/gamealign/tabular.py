"""Exact solutions of small preference games (one prompt, n responses, a preference matrix P).

P[i, j] = P(y_i ≻ y_j) with P + Pᵀ = 1 (it may be intransitive). Policies are probability vectors.
Provides each algorithm's closed-form update, the KL(π_ref)-regularised Nash equilibrium, its duality
gap (exploitability), and a Bradley–Terry fit — the ground truth the practical losses are tested
against (tests/test_tabular.py).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, xlogy


def normalize_log(logits: np.ndarray) -> np.ndarray:
    return np.exp(logits - logsumexp(logits))


def win_rate(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """P(y ≻ π) = Σ_y' π(y') P(y ≻ y') for every y."""
    return P @ pi


# --- closed-form updates ------------------------------------------------------------------------
def inpo_update(pi_t, pi_ref, P, eta, rho):
    """π_{t+1} ∝ π_t^{1−ρ} π_ref^{ρ} exp(P(y ≻ π_t)/η)."""
    return normalize_log((1 - rho) * np.log(pi_t) + rho * np.log(pi_ref) + win_rate(P, pi_t) / eta)


def wind_update(pi_t, pi_ref, P, eta, beta):
    """π_{t+1} ∝ π_t^{1−ηβ} π_ref^{ηβ} exp(η P(y ≻ π_t))."""
    a = eta * beta
    return normalize_log((1 - a) * np.log(pi_t) + a * np.log(pi_ref) + eta * win_rate(P, pi_t))


def sppo_update(pi_t, P, eta):
    """π_{t+1} ∝ π_t exp(η P(y ≻ π_t))."""
    return normalize_log(np.log(pi_t) + eta * win_rate(P, pi_t))


def ipo_update(pi_ref, mu, P, tau):
    """π ∝ π_ref exp(P(y ≻ μ)/τ)."""
    return normalize_log(np.log(pi_ref) + win_rate(P, mu) / tau)


def dpo_update(pi_ref, reward, beta):
    """π ∝ π_ref exp(r/β) (the DPO/RLHF optimum for a Bradley–Terry reward r)."""
    return normalize_log(np.log(pi_ref) + np.asarray(reward) / beta)


def bon_update(pi_t, reward, n):
    """Best-of-n of π_t under a reward with distinct values: π(y) = F(y)^n − F_<(y)^n."""
    reward = np.asarray(reward, dtype=float)
    order = np.argsort(reward)
    cdf = np.cumsum(pi_t[order])
    below = np.concatenate([[0.0], cdf[:-1]])
    out = np.empty_like(pi_t)
    out[order] = cdf ** n - below ** n
    return out


# --- equilibrium and exploitability -------------------------------------------------------------
def duality_gap(pi, P, pi_ref, tau):
    """Duality gap of the regularised game f(π, π') = πᵀPπ' − τKL(π‖π_ref) + τKL(π'‖π_ref) at (π, π).

    max_π1 f(π1, π) − min_π2 f(π, π2) = τ log Σ π_ref e^{P(y≻π)/τ} + τ log Σ π_ref e^{−(1−P(y≻π))/τ}
    + 2τ KL(π‖π_ref) ≥ 0, with equality exactly at the regularised Nash equilibrium.
    """
    w = win_rate(P, pi)
    kl = float(np.sum(xlogy(pi, pi) - xlogy(pi, pi_ref)))   # 0 log 0 = 0: a policy may put no mass on a response
    best = tau * logsumexp(w / tau, b=pi_ref)
    worst = -tau * logsumexp(-(1.0 - w) / tau, b=pi_ref)
    return float(best - worst + 2 * tau * kl)


def exploitability(pi, P):
    """Unregularised: max_y P(y ≻ π) − ½ (zero exactly at a Nash equilibrium of the symmetric game)."""
    return float(np.max(win_rate(P, pi)) - 0.5)


def regularized_nash(P, pi_ref, tau, tol=1e-12, max_iter=200000):
    """π* ∝ π_ref exp(P(y ≻ π*)/τ), by damped fixed-point iteration on the log-policy."""
    logp = np.log(pi_ref).copy()
    step = min(1.0, tau)
    for _ in range(max_iter):
        target = np.log(pi_ref) + win_rate(P, np.exp(logp)) / tau
        target -= logsumexp(target)
        new = (1 - step) * logp + step * target
        new -= logsumexp(new)
        if np.max(np.abs(new - logp)) < tol:
            return np.exp(new)
        logp = new
    raise RuntimeError("regularized_nash did not converge")


def fit_bradley_terry(P, weights, iters=5000, lr=0.5):
    """Reward r maximising Σ w_ij [P_ij log σ(r_i − r_j) + P_ji log σ(r_j − r_i)] (mean-zero)."""
    n = len(P)
    r = np.zeros(n)
    W = np.asarray(weights, dtype=float)
    for _ in range(iters):
        d = r[:, None] - r[None, :]
        s = 1.0 / (1.0 + np.exp(-d))
        grad = ((P - s) * (W + W.T)).sum(axis=1)
        r += lr * grad / max(W.sum(), 1e-12)
        r -= r.mean()
    return r


def random_preferences(n, rng) -> np.ndarray:
    A = rng.uniform(0, 1, size=(n, n))
    P = np.triu(A, 1) + np.tril(1 - A.T, -1)
    np.fill_diagonal(P, 0.5)
    return P


def rock_paper_scissors(strength=0.9) -> np.ndarray:
    """A cyclic (intransitive) game: 0 ≻ 1 ≻ 2 ≻ 0 with P = strength; no Bradley–Terry fit exists."""
    s = strength
    return np.array([[0.5, s, 1 - s], [1 - s, 0.5, s], [s, 1 - s, 0.5]])


def tv(p, q) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())
