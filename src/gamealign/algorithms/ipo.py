"""IPO — Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
Preferences", arXiv 2310.12036, Eq. (17) (empirical IPO loss):

    L_IPO = ( [log π_θ(y_w) − log π_θ(y_l)] − [log π_ref(y_w) − log π_ref(y_l)] − 1/(2τ) )²

Exact population minimiser with pairs from μ (here the on-policy π_t) × μ and labels ∼ P:
π ∝ π_ref exp(P(y ≻ μ)/τ), i.e. h*(y, y') = (P(y ≻ μ) − P(y' ≻ μ))/τ. Pairs: best vs. worst of K
by K-sample win rate (online: sampled from the algorithm's own iterate each round).

`length_normalize: true` uses mean per-token log-probs (log π(y) / |y|) for policy and reference, TRL's
IPO convention (DPOTrainer divides the summed log-probs by the completion length for loss_type "ipo");
the default keeps the paper's sequence log-probs.
"""

from __future__ import annotations

from .base import Algorithm, batch_mean, best_worst_examples, register


def ipo_loss(logp_w, logp_l, ref_w, ref_l, tau: float):
    h = (logp_w - logp_l) - (ref_w - ref_l)
    return (h - 1.0 / (2.0 * tau)) ** 2, h


@register
class IPO(Algorithm):
    name = "ipo"
    online = True
    frozen = ("ref",)

    def build_examples(self, groups, rng):
        return best_worst_examples(groups)

    def loss(self, batch):
        lp, ref = batch["logp"], batch["ref"]
        if self.hparams.get("length_normalize"):
            n = batch["ntok"].clamp_min(1)
            lp, ref = lp / n, ref / n
        per, h = ipo_loss(lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], self.hparams["tau"])
        return batch_mean(per, batch), {"margin": h.mean().item()}
