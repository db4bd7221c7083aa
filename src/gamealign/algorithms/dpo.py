"""DPO — Rafailov et al. 2023, "Direct Preference Optimization", arXiv 2305.18290, Eq. 7.

    L_DPO = −log σ( β [ (log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x)) ] )

Offline: every round trains on the same fixed pairs (best vs. worst of the annotated round-1
samples by K-sample win rate), continuing from the previous round's model with π_ref = SFT.
Exact tabular target under Bradley–Terry data: π ∝ π_ref exp(r/β).
"""

from __future__ import annotations

from .base import Algorithm, batch_mean, best_worst_examples, register


def dpo_loss(logp_w, logp_l, ref_w, ref_l, beta: float):
    """Per-example DPO loss from per-sequence log-probs (Eq. 7 of arXiv 2305.18290)."""
    import torch.nn.functional as F  # here, not at module top: the registry stays torch-free
    h = (logp_w - ref_w) - (logp_l - ref_l)
    return -F.logsigmoid(beta * h), h


@register
class DPO(Algorithm):
    name = "dpo"
    online = False
    frozen = ("ref",)

    def build_examples(self, groups, rng):
        return best_worst_examples(groups)

    def loss(self, batch):
        beta = self.hparams["beta"]
        lp, ref = batch["logp"], batch["ref"]
        per, h = dpo_loss(lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], beta)
        acc = (h > 0).float().mean()
        return batch_mean(per, batch), {"margin": h.mean().item(), "reward_acc": acc.item()}
