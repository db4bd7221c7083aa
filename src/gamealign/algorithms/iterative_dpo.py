"""Iterative (online) DPO — Dong et al. 2024, "RLHF Workflow: From Reward Modeling to Online RLHF",
arXiv 2405.07863; loss as in the authors' released code (RLHFlow/Online-RLHF, DPO with label
smoothing, reference = the previous iterate π_t):

    h = [log π_θ(y_w) − log π_t(y_w)] − [log π_θ(y_l) − log π_t(y_l)]
    L = −(1 − ε) log σ(β h) − ε log σ(−β h),     ε = label smoothing (0.1 in their runs)

Pairs: best vs. worst of K responses by score (here the K-sample win rate under the annotator —
a Bradley–Terry/reward view of the preferences). Defaults β = 0.1, K = 4, ε = 0.1.
"""

from __future__ import annotations

from .base import Algorithm, batch_mean, best_worst_examples, register


def iterative_dpo_loss(logp_w, logp_l, prev_w, prev_l, beta: float, label_smoothing: float):
    import torch.nn.functional as F  # here, not at module top: the registry stays torch-free
    h = (logp_w - prev_w) - (logp_l - prev_l)
    eps = label_smoothing
    return -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h), h


@register
class IterativeDPO(Algorithm):
    name = "iterative_dpo"
    online = True
    frozen = ("prev",)

    def build_examples(self, groups, rng):
        return best_worst_examples(groups)

    def loss(self, batch):
        lp, prev = batch["logp"], batch["prev"]
        per, h = iterative_dpo_loss(lp[:, 0], lp[:, 1], prev[:, 0], prev[:, 1], self.hparams["beta"],
                                    self.hparams["label_smoothing"])
        return batch_mean(per, batch), {"margin": h.mean().item(), "reward_acc": (h > 0).float().mean().item()}
