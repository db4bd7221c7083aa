"""Iterative best-of-N distillation (iterative BOND) — Sessa et al. 2024, "BOND: Aligning LLMs with
Best-of-N Distillation", arXiv 2407.14622, in its simplest (forward-KL / MLE) form:

    L = −(1/|y*|) log π_θ(y* | x),   y* = the best of the N = K samples of π_t

with "best" the sample with the highest K-sample win rate under the annotator (ties broken at random). With exact data the
minimiser is the best-of-N distribution π_{t+1} = BoN_N(π_t), i.e. for a reward with CDF F under π_t,
π_{t+1}(y) = F(y)^N − F_<(y)^N (≈ N π_t(y) F(y)^{N−1}). This is the target WIND reaches faster.
"""

from __future__ import annotations

import numpy as np

from .base import Algorithm, Example, batch_mean, register


def bon_nll(logp, ntok):
    """Token-normalised negative log-likelihood of the best-of-N response ([B, 1] tensors)."""
    return -(logp[:, 0] / ntok[:, 0].clamp(min=1))


@register
class BoNDistill(Algorithm):
    name = "bon_distill"
    online = True
    frozen = ()

    def build_examples(self, groups, rng):
        out = []
        for g in groups:
            wr = g.win_rates()
            # ties for best are broken at random, as best-of-N under a reward with ties does; a group whose samples
            # all tie (K identical texts, or a judge indifferent between them) still has a best-of-N: one of them
            best = np.flatnonzero(np.isclose(wr, wr.max()))
            out.append(Example(g.prompt_id, [g.responses[int(best[rng.randrange(len(best))])]]))
        return out

    def loss(self, batch):
        per = bon_nll(batch["logp"], batch["ntok"])
        return batch_mean(per, batch), {"nll": per.mean().item()}
