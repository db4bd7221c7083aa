"""WIND — "Win rate dominance", arXiv 2410.20727 (iterative best-of-N distillation made fast).

No public code exists and the paper's own equations could not be retrieved on this machine, so
this module implements DESIGN.md §4's reading of it (stated in the README too):

    g(y) = log π_θ(y) − (1 − ηβ) log π_t(y) − ηβ log π_ref(y)
    L_WIND-sq = ( g(y_w) − g(y_l) − η/2 )²

on pairs (y, y') drawn from π_t with ONE preference label each, z ∼ Bernoulli(P(y ≻ y')) — one
comparison per sample pair, no K-sample win-rate estimate. Written for the oriented pair (y, y') and a label
z ∈ [0, 1], the loss is (g(y) − g(y') − η(z − ½))²; `label: sample` draws z ∈ {0, 1} from the annotator's
P(y ≻ y') (the reading above), `label: soft` takes z = P(y ≻ y') itself. With a judge that answers 0 or 1 (one
LLM verdict; the game track's labels) the two are the same update; with one that returns a probability (the
panel's share of criteria: ties are P = ½) `soft` has the same expectation, hence the same population
minimiser below (a squared loss is minimised by the target's conditional mean), and none of the coin-flip
noise: a tied pair is regressed to h = 0 instead of to ±η/2 at random. `label: verdict` takes the annotator's
verdict, z = 1 if P(y ≻ y') > ½, 0 if < ½, ½ on a tie — the side of ½ that P is on, as INPO's tournament matches
read a pair (they break an exact tie by a coin flip instead); it plays the game of the verdict matrix
V = 1{P > ½} + ½·1{P = ½} instead of P (the same game for a 0/1 judge), with WIND's step and mixing unchanged. Of
the three, `sample` alone turns a pair the annotator prefers at P = ⅔ into a label that is wrong one time in three. A squared loss on the antisymmetric
score g(y) − g(y') with target c over pairs from π_t × π_t has minimiser g = 2c·P(y ≻ π_t) + const,
so with c = η/2 the population minimiser is exactly

    π_{t+1} ∝ π_t^{1−ηβ} π_ref^{ηβ} exp(η P(y ≻ π_t)),

whose fixed point is π* ∝ π_ref exp(P(y ≻ π*)/β). The K samples of a prompt are split into ⌊K/2⌋
disjoint pairs (comparison plan "disjoint": the annotation job judges only those), so every sample is
used in exactly one comparison.

`ties: skip` trains only on the pairs the annotator does not tie (P(y ≻ y') ≠ ½): every pair is still judged (the
same judge calls), but a tied one is dropped instead of pushed ±η/2 at random (`sample`) or held level (`soft`,
`verdict`). That changes the objective, not just its noise: the population minimiser is the regression above over
the decisive pairs only, so the tabular identity holds for a judge without ties (a 0/1 judge: the same update as
`keep`) and not for the panel. `keep` (the default) is DESIGN.md's reading.
"""

from __future__ import annotations

from .base import Algorithm, Example, batch_mean, disjoint_pairs, isclose, register


def wind_loss(logp_w, logp_l, ref_w, ref_l, prev_w, prev_l, eta: float, beta: float, z=1.0):
    """Per pair (y_w, y_l): (h − η(z − ½))² with h = g(y_w) − g(y_l); z = 1 (the default) is the sampled-label
    form (g(y_w) − g(y_l) − η/2)², a soft z ∈ [0, 1] the label's probability. Returns (loss, h)."""
    a = eta * beta
    g_w = logp_w - (1 - a) * prev_w - a * ref_w
    g_l = logp_l - (1 - a) * prev_l - a * ref_l
    h = g_w - g_l
    return (h - eta * (z - 0.5)) ** 2, h


@register
class WIND(Algorithm):
    name = "wind"
    online = True
    frozen = ("ref", "prev")
    plan = "disjoint"

    def build_examples(self, groups, rng):
        label = self.hparams.get("label", "sample")
        skip_ties = self.hparams.get("ties", "keep") == "skip"
        out = []
        for g in groups:
            for a, b in disjoint_pairs(g):
                p = g.pref(a, b)
                # drawn under either label, so a 0/1 judge (the game track) gives bit-identical runs with both
                a_wins = rng.random() < p   # one Bernoulli label per comparison
                if skip_ties and isclose(p, 0.5):   # drawn first, so the kept pairs' labels are keep's
                    continue
                if label == "soft":   # the pair as planned, its label the annotator's probability
                    out.append(Example(g.prompt_id, [g.responses[a], g.responses[b]], {"label": float(p)}))
                elif label == "verdict":   # the pair as planned, its label P's side of ½ (a tie: ½)
                    z = 0.5 if isclose(p, 0.5) else float(p > 0.5)
                    out.append(Example(g.prompt_id, [g.responses[a], g.responses[b]], {"label": z}))
                else:
                    w, l = (a, b) if a_wins else (b, a)
                    out.append(Example(g.prompt_id, [g.responses[w], g.responses[l]], {"label": 1.0}))
        return out

    def loss(self, batch):
        lp, ref, prev = batch["logp"], batch["ref"], batch["prev"]
        per, h = wind_loss(lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], prev[:, 0], prev[:, 1],
                           self.hparams["eta"], self.hparams["beta"], batch["label"])
        return batch_mean(per, batch), {"margin": h.mean().item()}
