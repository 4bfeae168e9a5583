"""Benchmark runners that write the official layouts and record the sampling recipe."""

from .geneval import Recipe, run_geneval

__all__ = ["Recipe", "run_geneval"]
