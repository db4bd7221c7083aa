"""The algorithm interface and registry (DESIGN.md §4).

An algorithm declares whether it is online (samples from its own iterate every round), whether it
needs fresh annotations, which frozen log-probs its loss reads ("ref" = π_ref, the SFT model;
"prev" = π_t, the previous iterate, which is also where π_θ starts), and its comparison plan: which
pairs of a K-group it needs judged (`PLANS`). It turns each prompt's annotated group of K responses
into training examples, and its `loss` is a pure function of per-sequence log-probability tensors and
labels.

This package imports no torch (the losses import it when called): the Snakemake rules read these
declarations at parse time, and the annotation job runs the plans, without loading it.

Batch tensors seen by `loss` (B examples, n responses each, in the order of `Example.responses`):
  logp  [B, n]  log π_θ(y|x), summed over response tokens (requires grad)
  ref   [B, n]  log π_ref(y|x)      (if "ref" in frozen)
  prev  [B, n]  log π_t(y|x)        (if "prev" in frozen)
  ntok  [B, n]  response token counts
  plus one [B] or [B, n] tensor per key of `Example.fields`, and optionally
  weight [B]    example weights (the preference-game track's exact mode weighs each enumerated
                sample-and-label outcome by its probability); absent, every example counts once.
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field

import numpy as np

from ..io import DataError

# Comparison plans (which pairs of a K-group an algorithm's examples read, so which pairs annotation judges):
#   all        — every pair i < j: K(K−1)/2 (win-rate estimates, best-vs-worst by win rate)
#   disjoint   — ⌊K/2⌋ disjoint pairs from a shuffle of the K samples, one label each (WIND)
#   tournament — the matches of a knockout tournament, played bracket by bracket (INPO): which pair meets
#                next depends on earlier results, so annotation plays the tournament itself
PLANS = ("all", "disjoint", "tournament")


def isclose(a: float, b: float) -> bool:
    """np.isclose(a, b) for two finite scalars, the same test (|a − b| ≤ 1e-8 + 1e-5·|b|) without numpy's array
    machinery: the preference-game track calls it about half a million times a job, at ≈ 14 µs a call as np.isclose
    on scalars (≈ 0.15 µs here): ≈ 7 s of a game job; the same booleans (the game track's results are unchanged)."""
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


@dataclass
class Group:
    """One prompt's responses and (if annotated) the preference matrix P[i, j] = P(y_i ≻ y_j)."""

    prompt_id: str
    responses: list[str]
    prefs: np.ndarray | None = None
    finished: list[bool] | None = None   # per response: ended with EOS (False: cut at max_new_tokens)
    # seeds the random choices of the comparison plan (WIND's pairing, INPO's bracket): the annotation job and
    # the trainer draw the same stream, so the trainer reads exactly the pairs that were judged
    plan_seed: int = 0
    # the comparisons (i < j) an algorithm's example building has read: what it is charged for
    read: set = field(default_factory=set, repr=False, compare=False)

    def pref(self, i: int, j: int) -> float:
        """P(y_i ≻ y_j), recorded as read; a pair the annotation did not judge (NaN) raises DataError."""
        self.read.add((min(i, j), max(i, j)))
        p = float(self.prefs[i, j])
        if p != p:
            raise self._unjudged(i, j)
        return p

    def _unjudged(self, i: int, j: int) -> DataError:
        return DataError(f"prompt {self.prompt_id}: responses {i} and {j} were not judged — the preference file "
                         "holds only the pairs its annotation plan named, and this algorithm's plan reads another "
                         "(annotate with the algorithm's comparison plan and the same plan seed)")

    def plan_rng(self) -> random.Random:
        """The random stream of this group's comparison plan (a str seed hashes with sha512: stable across runs)."""
        return random.Random(f"{self.plan_seed}/{self.prompt_id}")

    def comparisons_read(self, rule_decided: bool = False) -> int:
        """Comparisons read that needed a judge: a pair of identical texts ties without one, and with
        `rule_decided` (sampling.truncated: lose) a cut response loses to a finished one without one."""
        cut = [not f for f in self.finished] if rule_decided and self.finished else None
        return sum(self.responses[i] != self.responses[j] and not (cut and cut[i] != cut[j]) for i, j in self.read)

    def win_rates(self, include_self: bool = False) -> np.ndarray:
        """P̂(y_i ≻ π_t) from the K samples of π_t: the mean of P[i, j] over the other K − 1 samples
        (leave-one-out), or with `include_self` over all K with P[i, i] = ½, as the SPPO authors compute it
        (uclaml/SPPO scripts/compute_prob.py: the row sum of the K × K matrix divided by K). The two are
        affine in each other, so pair choices by arg-max / arg-min agree."""
        k = len(self.responses)
        self.read.update((i, j) for i in range(k) for j in range(i + 1, k))  # every pair enters a win rate
        if np.isnan(self.prefs).any():
            i, j = map(int, np.argwhere(np.isnan(self.prefs))[0])
            raise self._unjudged(i, j)
        if include_self:
            return (self.prefs.sum(axis=1) - np.diag(self.prefs) + 0.5) / k
        return (self.prefs.sum(axis=1) - np.diag(self.prefs)) / (k - 1)


@dataclass
class Example:
    prompt_id: str
    responses: list[str]
    fields: dict[str, float | list[float]] = field(default_factory=dict)


class Algorithm(abc.ABC):
    name: str = ""
    online: bool = True
    frozen: tuple[str, ...] = ("ref",)
    plan: str = "all"          # the comparison plan (PLANS) its example building reads

    def __init__(self, **hparams):
        self.hparams = hparams

    @classmethod
    def comparison_plan(cls, hparams: dict) -> str:
        """Which pairs of a K-group this algorithm reads under `hparams` (one of PLANS)."""
        return cls.plan

    @abc.abstractmethod
    def build_examples(self, groups: list[Group], rng: random.Random) -> list[Example]:
        """Training examples from each prompt's annotated group of K responses."""

    @abc.abstractmethod
    def loss(self, batch: dict):
        """(mean loss, metrics dict) from the batch tensors described in the module docstring."""


def batch_mean(per, batch: dict):
    """The batch loss from per-example losses: their mean, or their weighted mean when the batch has `weight`."""
    w = batch.get("weight")
    return per.mean() if w is None else (per * w).sum() / w.sum()


REGISTRY: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"bad or duplicate algorithm name {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def get_algorithm(name: str, hparams: dict) -> Algorithm:
    if name not in REGISTRY:
        raise KeyError(f"algorithms.{name}: unknown algorithm (registered: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name](**hparams)


# --- pair selection shared by several algorithms ---------------------------------------------
def best_worst(group: Group) -> tuple[int, int] | None:
    """(argmax, argmin) of the K-sample win rate; None when every response ties."""
    wr = group.win_rates()
    w, l = int(np.argmax(wr)), int(np.argmin(wr))
    if isclose(float(wr[w]), float(wr[l])):
        return None
    return w, l


def best_worst_examples(groups: list[Group]) -> list[Example]:
    """One (best, worst) pair per prompt by K-sample win rate; prompts whose responses all tie are skipped."""
    out = []
    for g in groups:
        pair = best_worst(g)
        if pair:
            out.append(Example(g.prompt_id, [g.responses[pair[0]], g.responses[pair[1]]]))
    return out


def _match(group: Group, a: int, b: int, rng: random.Random) -> tuple[int, int]:
    """(winner, loser) of one match: P[a, b] > ½ wins, an exact tie is a coin flip."""
    p = group.pref(a, b)
    a_wins = p > 0.5 or (p == 0.5 and rng.random() < 0.5)
    return (a, b) if a_wins else (b, a)


def _knockout(group: Group, entrants: list[int], rng: random.Random, advance: int) -> int:
    """Single-elimination bracket; `advance` 0 moves winners on, 1 moves losers on; odd one out gets a bye."""
    while len(entrants) > 1:
        nxt = [_match(group, a, b, rng)[advance] for a, b in zip(entrants[0::2], entrants[1::2])]
        if len(entrants) % 2:
            nxt.append(entrants[-1])
        entrants = nxt
    return entrants[0]


def disjoint_pairs(group: Group) -> list[tuple[int, int]]:
    """⌊K/2⌋ disjoint pairs of a shuffle of the K samples (from the group's plan stream): every sample in one pair."""
    order = list(range(len(group.responses)))
    group.plan_rng().shuffle(order)
    return list(zip(order[0::2], order[1::2]))


def run_plan(plan: str, group: Group) -> None:
    """Read (Group.pref) every comparison `plan` needs of `group` — what the annotation job runs, against a
    judge, to decide which pairs to judge; the algorithms' example building reads the same pairs."""
    if plan == "all":
        k = len(group.responses)
        for i in range(k):
            for j in range(i + 1, k):
                group.pref(i, j)
    elif plan == "disjoint":
        for a, b in disjoint_pairs(group):
            group.pref(a, b)
    elif plan == "tournament":
        tournament(group, group.plan_rng())
    else:
        raise ValueError(f"unknown comparison plan {plan!r} (known: {', '.join(PLANS)})")


def tournament(group: Group, rng: random.Random) -> tuple[int, int] | None:
    """INPO's pair selection: (tournament champion, loser of the losers' bracket).

    The K responses are shuffled and paired; first-round winners play a knockout for the champion,
    first-round losers play a bracket in which the loser advances, giving the worst response.
    None when the two finalists tie (reading their comparison: one more when they never met).
    """
    order = list(range(len(group.responses)))
    rng.shuffle(order)
    if len(order) < 2:
        return None
    firsts = [_match(group, a, b, rng) for a, b in zip(order[0::2], order[1::2])]
    winners = [w for w, _ in firsts] + ([order[-1]] if len(order) % 2 else [])
    losers = [l for _, l in firsts]
    champion = _knockout(group, winners, rng, advance=0)
    worst = _knockout(group, losers, rng, advance=1)
    if champion == worst or isclose(group.pref(champion, worst), 0.5):
        return None
    return champion, worst
