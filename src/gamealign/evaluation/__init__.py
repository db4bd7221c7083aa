"""Evaluation of every model: held-out win rate vs. the SFT model (more benchmarks: issue #4)."""
