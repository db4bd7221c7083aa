"""gamealign: a reproducible study of game-theoretic LLM alignment."""

__version__ = "0.1.0"
