"""Headless matplotlib for every figure the library writes (run plots, study curves, eval summaries, demo)."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); imported lazily so plotting stays optional."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
