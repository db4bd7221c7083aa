"""Annotators behind one interface: `judge(prompt, responses) -> matrix P[i, j] = P(y_i ≻ y_j)`.

`annotate_groups` runs a judge over every prompt's K responses, judging each unordered pair once
(the matrix is antisymmetric: P[j, i] = 1 − P[i, j]) and consulting a content-hash cache first, so
identical pairs are never judged twice.
"""

from __future__ import annotations

from .base import Judge, JudgeCache, JudgeInputError, JudgeServiceError, annotate_groups, make_judge  # noqa: F401
