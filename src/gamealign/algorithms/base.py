"""The algorithm interface and registry (DESIGN.md §4).

An algorithm declares whether it is online (samples from its own iterate every round), whether it
needs fresh annotations, and which frozen log-probs its loss reads ("ref" = π_ref, the SFT model;
"prev" = π_t, the previous iterate, which is also where π_θ starts). It turns each prompt's
annotated group of K responses into training examples, and its `loss` is a pure function of
per-sequence log-probability tensors and labels.

Batch tensors seen by `loss` (B examples, n responses each, in the order of `Example.responses`):
  logp  [B, n]  log π_θ(y|x), summed over response tokens (requires grad)
  ref   [B, n]  log π_ref(y|x)      (if "ref" in frozen)
  prev  [B, n]  log π_t(y|x)        (if "prev" in frozen)
  ntok  [B, n]  response token counts
  plus one [B] or [B, n] tensor per key of `Example.fields`.
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Group:
    """One prompt's responses and (if annotated) the preference matrix P[i, j] = P(y_i ≻ y_j)."""

    prompt_id: str
    responses: list[str]
    prefs: np.ndarray | None = None
    finished: list[bool] | None = None   # per response: ended with EOS (False: cut at max_new_tokens)
    # the comparisons (i < j) an algorithm's example building has read: what it is charged for
    read: set = field(default_factory=set, repr=False, compare=False)

    def pref(self, i: int, j: int) -> float:
        """P(y_i ≻ y_j), recorded as read."""
        self.read.add((min(i, j), max(i, j)))
        return float(self.prefs[i, j])

    def comparisons_read(self) -> int:
        """Comparisons read that needed a judge (a pair of identical texts ties without one)."""
        return sum(self.responses[i] != self.responses[j] for i, j in self.read)

    def win_rates(self, include_self: bool = False) -> np.ndarray:
        """P̂(y_i ≻ π_t) from the K samples of π_t: the mean of P[i, j] over the other K − 1 samples
        (leave-one-out), or with `include_self` over all K with P[i, i] = ½, as the SPPO authors compute it
        (uclaml/SPPO scripts/compute_prob.py: the row sum of the K × K matrix divided by K). The two are
        affine in each other, so pair choices by arg-max / arg-min agree."""
        k = len(self.responses)
        self.read.update((i, j) for i in range(k) for j in range(i + 1, k))  # every pair enters a win rate
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
    needs_annotations: bool = True
    frozen: tuple[str, ...] = ("ref",)

    def __init__(self, **hparams):
        self.hparams = hparams

    @abc.abstractmethod
    def build_examples(self, groups: list[Group], rng: random.Random) -> list[Example]:
        """Training examples from each prompt's annotated group of K responses."""

    @abc.abstractmethod
    def loss(self, batch: dict):
        """(mean loss, metrics dict) from the batch tensors described in the module docstring."""


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
    if np.isclose(wr[w], wr[l]):
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
    if champion == worst or np.isclose(group.pref(champion, worst), 0.5):
        return None
    return champion, worst
