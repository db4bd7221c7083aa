"""SPPO — Wu et al. 2024, "Self-Play Preference Optimization for Language Model Alignment",
arXiv 2405.00675, Eq. (4.6)/(3.8); loss as in the authors' released code (SPPO, `sppo` loss type):

    L = ½ Σ_{y ∈ {y_w, y_l}} ( log π_θ(y)/π_t(y) − η (P̂(y ≻ π_t) − ½) )²

with P̂(y ≻ π_t) the win rate of y estimated from the K samples of π_t. By default as the authors'
code computes it (uclaml/SPPO scripts/compute_prob.py and prepare_score: the row sum of the K × K
preference matrix, self-comparison P(y ≻ y) = ½ included, divided by K); `win_rate: loo` averages over
the other K − 1 samples only (an unbiased estimate of P(y ≻ π_t) for y drawn from π_t: the self term
pulls every estimate towards ½ by a factor (K − 1)/K). Its minimiser approximates π_{t+1} ∝ π_t exp(η P(y ≻ π_t)) (the ½ stands in for the
log-partition, log Z ≈ η/2). Defaults η = 1/β = 1000 (β = 0.001), K = 5.
"""

from __future__ import annotations

from .base import Algorithm, Example, batch_mean, best_worst, register


def sppo_loss(logp, prev, win_rate, eta: float):
    """logp, prev, win_rate: [B, n] tensors (n responses per example)."""
    return 0.5 * ((logp - prev - eta * (win_rate - 0.5)) ** 2).sum(-1)


@register
class SPPO(Algorithm):
    name = "sppo"
    online = True
    frozen = ("prev",)

    def build_examples(self, groups, rng):
        out = []
        for g in groups:
            pair = best_worst(g)
            if pair:
                wr = g.win_rates(include_self=self.hparams.get("win_rate", "with_self") == "with_self")
                out.append(Example(g.prompt_id, [g.responses[pair[0]], g.responses[pair[1]]],
                                   {"win_rate": [float(wr[pair[0]]), float(wr[pair[1]])]}))
        return out

    def loss(self, batch):
        per = sppo_loss(batch["logp"], batch["prev"], batch["win_rate"], self.hparams["eta"])
        return batch_mean(per, batch), {"logratio_w": (batch["logp"] - batch["prev"])[:, 0].mean().item()}
