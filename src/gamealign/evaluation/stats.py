"""Confidence intervals for mean preferences."""

from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap over items, deterministic in `seed`."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to average")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def truncation_rate(rows: list[dict]) -> float:
    """Share of responses that stopped at max_new_tokens (finish_reason "length")."""
    return sum(r.get("finish_reason") == "length" for r in rows) / max(len(rows), 1)


def crossed_bootstrap_ci(matrix, level: float = 0.95, n_boot: int = 2000, seed: int = 0,
                         denominator=None) -> tuple[float, float, float]:
    """(mean, low, high) of the grand mean of a seeds × prompts matrix, with a percentile bootstrap that resamples
    seeds and prompts independently (the "pigeonhole" bootstrap for crossed random effects, Owen 2007, Ann. Appl.
    Stat. 1(2)): every seed answers the same prompts, so neither unit alone is independent. Its variance counts
    the seed-to-seed spread, the prompt-to-prompt spread and their interaction; with one seed it is the
    bootstrap over prompts. With `denominator` (same shape) the statistic is the ratio Σ matrix / Σ denominator
    (e.g. constraints met / constraints asked, with prompts of different sizes). Deterministic in `seed`."""
    x = np.asarray(matrix, dtype=float)
    d = np.ones_like(x) if denominator is None else np.asarray(denominator, dtype=float)
    if d.shape != x.shape:
        raise ValueError(f"denominator shape {d.shape} differs from the matrix's {x.shape}")
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"need a non-empty seeds × prompts matrix, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("the seeds × prompts matrix has missing cells")
    n_s, n_p = x.shape
    rng = np.random.default_rng(seed)
    # a resample's mean is w_s · X · w_p, w = multiplicities / n: no index arrays of size n_boot × n_s × n_p
    w_s = rng.multinomial(n_s, np.full(n_s, 1.0 / n_s), size=n_boot) / n_s
    w_p = rng.multinomial(n_p, np.full(n_p, 1.0 / n_p), size=n_boot) / n_p
    means = np.einsum("bs,sp,bp->b", w_s, x, w_p) / np.einsum("bs,sp,bp->b", w_s, d, w_p)
    alpha = (1.0 - level) / 2.0
    return float(x.sum() / d.sum()), float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))
