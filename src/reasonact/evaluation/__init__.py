"""Evaluation: the policy contract and the vectorised, fixed-seed success-rate harness."""

from reasonact.evaluation.harness import EvalConfig, evaluate, wilson_interval
from reasonact.evaluation.policy import (
    ConstantPolicy,
    ExpertPolicy,
    Policy,
    PolicyFactory,
    RandomPolicy,
    resolve_policy,
)

__all__ = [
    "ConstantPolicy",
    "EvalConfig",
    "ExpertPolicy",
    "Policy",
    "PolicyFactory",
    "RandomPolicy",
    "evaluate",
    "resolve_policy",
    "wilson_interval",
]
