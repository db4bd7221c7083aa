"""The `panel` judge: deterministic criteria that vote (DESIGN.md §5).

P(y_i ≻ y_j) = (number of criteria preferring y_i + ½ · number tied) / number of criteria.
A majority of criteria can be intransitive (e.g. concise vs. meets a minimum length), which is
exactly the general-preference setting the Nash-style algorithms target.

Criteria (each maps a response to a score; higher is better, near-equal scores tie):
- constraints:   share of the prompt's verifiable constraints (meta.constraints) satisfied
- concise:       fewer words (ties within 20%); an empty response is worst
- no_repetition: share of distinct word 3-grams (degenerate loops score low)
- relevance:     share of the prompt's content words (or meta.topic words) the response uses
- complete:      ends on a finished sentence, bullet, or closing bracket/quote
"""

from __future__ import annotations

import re

from .. import constraints as C
from .base import JudgeInputError, PairwiseJudge

ALL_CRITERIA = ("constraints", "concise", "no_repetition", "relevance", "complete")
_STOP = set("""a an the and or of to in on for with about what which that this those these how why
be is are was were it its as at by from into your you my our their write give explain describe use
answer words word least most more than no not do does include format exactly only reply each every
short paragraph list should make sure""".split())


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in C.words(text) if len(w) > 3 and w.lower() not in _STOP}


class PanelJudge(PairwiseJudge):
    name = "panel"


    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.get("criteria"))

    def __init__(self, criteria=None):
        self.criteria = tuple(criteria or ALL_CRITERIA)
        unknown = set(self.criteria) - set(ALL_CRITERIA)
        if unknown:
            raise JudgeInputError(f"judge.criteria: unknown criteria {sorted(unknown)}")

    def identity(self) -> dict:
        return {"name": self.name, "criteria": list(self.criteria), "version": 1}

    # --- scores -------------------------------------------------------------------------------
    @staticmethod
    def score_constraints(prompt: dict, text: str) -> float | None:
        cons = (prompt.get("meta") or {}).get("constraints") or []
        if not cons:
            return None
        return sum(C.satisfied(c, text) for c in cons) / len(cons)

    @staticmethod
    def score_no_repetition(text: str) -> float:
        w = [x.lower() for x in C.words(text)]
        grams = list(zip(w, w[1:], w[2:]))
        return len(set(grams)) / len(grams) if grams else (1.0 if w else 0.0)

    @staticmethod
    def score_relevance(prompt: dict, text: str) -> float:
        topic = (prompt.get("meta") or {}).get("topic")
        target = _content_words(topic) if topic else _content_words(prompt["messages"][-1]["content"])
        if not target:
            return 0.0
        return len(target & _content_words(text)) / len(target)

    @staticmethod
    def score_complete(text: str) -> float:
        t = text.rstrip()
        return 1.0 if t and re.search(r"""[.!?)\]}"'>*`]$""", t) else 0.0

    # --- votes --------------------------------------------------------------------------------
    def _vote(self, criterion: str, prompt: dict, a: str, b: str) -> float:
        if criterion == "concise":
            la, lb = len(C.words(a)), len(C.words(b))
            if la == 0 or lb == 0:
                return 0.5 if la == lb else (1.0 if lb == 0 else 0.0)
            if abs(la - lb) <= 0.2 * max(la, lb):
                return 0.5
            return 1.0 if la < lb else 0.0
        if criterion == "constraints":
            sa, sb = self.score_constraints(prompt, a), self.score_constraints(prompt, b)
            if sa is None:
                return 0.5
        elif criterion == "no_repetition":
            sa, sb = self.score_no_repetition(a), self.score_no_repetition(b)
            if abs(sa - sb) < 0.05:
                return 0.5
        elif criterion == "relevance":
            sa, sb = self.score_relevance(prompt, a), self.score_relevance(prompt, b)
        else:
            sa, sb = self.score_complete(a), self.score_complete(b)
        return 0.5 if sa == sb else (1.0 if sa > sb else 0.0)

    def votes(self, prompt: dict, a: str, b: str) -> dict[str, float]:
        """Each criterion's vote on (a, b): 1 for a, 0 for b, ½ a tie."""
        return {c: self._vote(c, prompt, a, b) for c in self.criteria}

    def compare(self, prompt: dict, a: str, b: str) -> float:
        votes = self.votes(prompt, a, b)
        return sum(votes.values()) / len(votes)
