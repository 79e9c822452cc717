"""Evaluation: controllers (what acts) and the vectorised, fixed-seed success-rate harness."""

from reasonact.evaluation.controllers import (
    ConstantController,
    ControllerFactory,
    ExpertController,
    RandomController,
    resolve_controller,
)
from reasonact.evaluation.harness import EvalConfig, evaluate, wilson_interval

__all__ = [
    "ConstantController",
    "ControllerFactory",
    "EvalConfig",
    "ExpertController",
    "RandomController",
    "evaluate",
    "resolve_controller",
    "wilson_interval",
]
