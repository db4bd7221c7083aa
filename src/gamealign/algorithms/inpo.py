"""INPO — Zhang et al. 2024, "Iterative Nash Policy Optimization", arXiv 2407.00617.

Loss on one (y_w, y_l) pair per prompt, hard label (the paper's Eq. (9) in its practical form; the
target 1/(2η) follows the authors' released code):

    L_INPO = ( [log π_θ(y_w) − log π_θ(y_l)] − ρ [log π_ref(y_w) − log π_ref(y_l)]
               − (1 − ρ) [log π_t(y_w) − log π_t(y_l)] − 1/(2η) )²

with ρ = τ/η. Its population minimiser is the no-regret (OMD) step
π_{t+1} ∝ π_t^{1−ρ} π_ref^{ρ} exp(P(y ≻ π_t)/η), whose fixed point is the KL(π_ref)-regularised
Nash equilibrium π* ∝ π_ref exp(P(y ≻ π*)/τ). Pairs: tournament champion vs. losers'-bracket loser
among K on-policy samples (comparison plan "tournament": the annotation job plays the tournament and judges
only its matches); no win-rate estimation. `pairs: best_worst` picks by K-sample win rate instead (plan "all").
"""

from __future__ import annotations

from .base import Algorithm, Example, batch_mean, best_worst, register, tournament


def inpo_loss(logp_w, logp_l, ref_w, ref_l, prev_w, prev_l, eta: float, rho: float):
    """Per-example INPO squared loss (see module docstring)."""
    h = (logp_w - logp_l) - rho * (ref_w - ref_l) - (1.0 - rho) * (prev_w - prev_l)
    return (h - 1.0 / (2.0 * eta)) ** 2, h


@register
class INPO(Algorithm):
    name = "inpo"
    online = True
    frozen = ("ref", "prev")

    @classmethod
    def comparison_plan(cls, hparams):
        return "tournament" if hparams.get("pairs", "tournament") == "tournament" else "all"

    def build_examples(self, groups, rng):
        by_tournament = self.comparison_plan(self.hparams) == "tournament"
        out = []
        for g in groups:
            pair = tournament(g, g.plan_rng()) if by_tournament else best_worst(g)
            if pair:
                out.append(Example(g.prompt_id, [g.responses[pair[0]], g.responses[pair[1]]]))
        return out

    def loss(self, batch):
        lp, ref, prev = batch["logp"], batch["ref"], batch["prev"]
        per, h = inpo_loss(lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], prev[:, 0], prev[:, 1],
                           self.hparams["eta"], self.hparams["rho"])
        return batch_mean(per, batch), {"margin": h.mean().item()}
