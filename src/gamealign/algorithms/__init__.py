"""Algorithms, one module each, registered by name (see base.py for the interface)."""

from . import bon_distill, dpo, inpo, ipo, iterative_dpo, spac, sppo, wind  # noqa: F401  (registration)
from .base import REGISTRY, Algorithm, Example, Group, get_algorithm  # noqa: F401
