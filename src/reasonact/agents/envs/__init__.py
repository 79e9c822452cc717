"""Text environments for agents: reasoning problems with tools, BabyAI as text, split-information pairs."""

from __future__ import annotations

from reasonact.agents.envs.base import Step, TextEnv

ENVS = ("problems", "babyai", "split")


def make_env(name: str, split: str = "test") -> TextEnv:
    """`problems[:family]`, `babyai[:env-id]` or `split` on `split`'s seeds."""
    kind, _, option = name.partition(":")
    if kind == "problems":
        from reasonact.agents.envs.problems import ProblemEnv

        return ProblemEnv(option or "arithmetic", split)
    if kind == "babyai":
        from reasonact.agents.envs.babyai import BabyAIEnv

        return BabyAIEnv(option or "BabyAI-GoToRedBallNoDists-v0", split)
    if kind == "split":
        from reasonact.agents.envs.split import SplitInfoEnv

        return SplitInfoEnv(split)
    raise ValueError(f"env: expected one of {ENVS} (optionally `kind:option`), received {name!r}")


__all__ = ["ENVS", "Step", "TextEnv", "make_env"]
