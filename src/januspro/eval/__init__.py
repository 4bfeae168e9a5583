"""Benchmark runners that write the official layouts and record the sampling recipe."""

from .geneval import run_geneval
from .pope import run_pope

__all__ = ["run_geneval", "run_pope"]
