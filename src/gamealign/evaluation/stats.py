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
