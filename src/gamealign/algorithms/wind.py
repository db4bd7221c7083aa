"""WIND — "Win rate dominance", arXiv 2410.20727 (iterative best-of-N distillation made fast).

No public code exists and the paper's own equations could not be retrieved on this machine, so
this module implements DESIGN.md §4's reading of it (stated in the README too):

    g(y) = log π_θ(y) − (1 − ηβ) log π_t(y) − ηβ log π_ref(y)
    L_WIND-sq = ( g(y_w) − g(y_l) − η/2 )²

on pairs (y, y') drawn from π_t with ONE preference label each, z ∼ Bernoulli(P(y ≻ y')) — one
comparison per sample pair, no K-sample win-rate estimate. A squared loss on the antisymmetric
score g(y) − g(y') with target c over pairs from π_t × π_t has minimiser g = 2c·P(y ≻ π_t) + const,
so with c = η/2 the population minimiser is exactly

    π_{t+1} ∝ π_t^{1−ηβ} π_ref^{ηβ} exp(η P(y ≻ π_t)),

whose fixed point is π* ∝ π_ref exp(P(y ≻ π*)/β). The K samples of a prompt are split into ⌊K/2⌋
disjoint pairs (comparison plan "disjoint": the annotation job judges only those), so every sample is
used in exactly one comparison.
"""

from __future__ import annotations

from .base import Algorithm, Example, batch_mean, disjoint_pairs, register


def wind_loss(logp_w, logp_l, ref_w, ref_l, prev_w, prev_l, eta: float, beta: float):
    a = eta * beta
    g_w = logp_w - (1 - a) * prev_w - a * ref_w
    g_l = logp_l - (1 - a) * prev_l - a * ref_l
    h = g_w - g_l
    return (h - eta / 2.0) ** 2, h


@register
class WIND(Algorithm):
    name = "wind"
    online = True
    frozen = ("ref", "prev")
    plan = "disjoint"

    def build_examples(self, groups, rng):
        out = []
        for g in groups:
            for a, b in disjoint_pairs(g):
                a_wins = rng.random() < g.pref(a, b)   # one Bernoulli label per comparison
                w, l = (a, b) if a_wins else (b, a)
                out.append(Example(g.prompt_id, [g.responses[w], g.responses[l]]))
        return out

    def loss(self, batch):
        lp, ref, prev = batch["logp"], batch["ref"], batch["prev"]
        per, h = wind_loss(lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], prev[:, 0], prev[:, 1],
                           self.hparams["eta"], self.hparams["beta"])
        return batch_mean(per, batch), {"margin": h.mean().item()}
