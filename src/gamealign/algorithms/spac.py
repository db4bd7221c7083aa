"""SPAC — "Self-Play with Adversarial Critic", arXiv 2406.04274 (offline preference optimisation).

No public code exists and the paper's own equations could not be retrieved on this machine, so this
module implements DESIGN.md §4's reading (stated in the README): a DPO term on the fixed offline
pairs plus λ times an on-average-pessimism term that contrasts the data's preferred response with an
unlabeled self-play sample y' ∼ π_t, both log-sigmoid smoothed:

    r_θ(y) = β [log π_θ(y) − log π_ref(y)]
    L_SPAC = −log σ(r_θ(y+) − r_θ(y−)) − λ log σ(r_θ(y+) − r_θ(y'))

The second term pushes π_θ's implicit reward of its own samples below that of the data (a
pessimistic critic), which with the first gives the mirror-descent step π_{t+1} ∝ π_t exp(η f_t)
against that critic. Needs no new annotations: each round samples y' from π_t only.
"""

from __future__ import annotations

from .base import Algorithm, Example, batch_mean, best_worst, register


def spac_loss(logp, ref, beta: float, lam: float):
    """logp, ref: [B, 3] for (y+, y−, y'); returns per-example loss and the offline margin."""
    import torch.nn.functional as F  # here, not at module top: the registry stays torch-free
    r = beta * (logp - ref)
    dpo_term = -F.logsigmoid(r[:, 0] - r[:, 1])
    pessimism = -F.logsigmoid(r[:, 0] - r[:, 2])
    return dpo_term + lam * pessimism, r[:, 0] - r[:, 1]


@register
class SPAC(Algorithm):
    name = "spac"
    online = False           # offline pairs...
    self_play = True         # ...plus fresh unlabeled samples from π_t every round
    frozen = ("ref",)

    def build_examples_with_offline(self, offline_groups, selfplay_groups, rng):
        by_id = {g.prompt_id: g for g in selfplay_groups}
        out = []
        for g in offline_groups:
            pair = best_worst(g)
            sp = by_id.get(g.prompt_id)
            if pair and sp and sp.responses:
                pos, neg = g.responses[pair[0]], g.responses[pair[1]]
                # round 1 draws y' from the same SFT samples: prefer one that is neither y+ nor y−
                pool = [y for y in sp.responses if y not in (pos, neg)] or sp.responses
                out.append(Example(g.prompt_id, [pos, neg, pool[rng.randrange(len(pool))]]))
        return out

    def build_examples(self, groups, rng):
        raise TypeError("spac needs offline pairs and self-play samples: use build_examples_with_offline")

    def loss(self, batch):
        per, m = spac_loss(batch["logp"], batch["ref"], self.hparams["beta"], self.hparams["lam"])
        return batch_mean(per, batch), {"margin": m.mean().item()}
