"""Annotators behind one interface: `judge(prompt, responses, pairs) -> [P(y_i ≻ y_j), ...]`, batch-first.

`annotate_groups` runs a judge over every prompt's K responses, judging each unordered pair once
(the matrix is antisymmetric: P[j, i] = 1 − P[i, j]) and consulting a content-hash cache first, so
identical pairs are never judged twice.
"""

from __future__ import annotations

from .base import (CachedJudge, Judge, JudgeCache, JudgeInputError, JudgeServiceError, annotate_groups,  # noqa: F401
                   make_judge, register_judge)
