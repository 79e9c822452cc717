"""Process reward models (SPEC §3.2): step-labelled data (checker and Math-Shepherd Monte Carlo
labels, TRL's step-wise format), PRM models (step classifier, TD value, outcome RM), their
metrics, and the learned scorer every search method takes."""

from __future__ import annotations

from reasonact.reasoning.prm.data import PRMRow, checker_rows, read_rows, validate_row
from reasonact.reasoning.prm.model import PRM, LearnedScorer

__all__ = ["PRM", "LearnedScorer", "PRMRow", "checker_rows", "read_rows", "validate_row"]
