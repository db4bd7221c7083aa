"""Algorithms, one module each, registered by name (see base.py for the interface)."""

from . import dpo, inpo  # noqa: F401  (registration side effects)
from .base import REGISTRY, Algorithm, Example, Group, get_algorithm  # noqa: F401
