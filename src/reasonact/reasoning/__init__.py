"""o1-style reasoning: tasks with checkable steps, the reasoning MDP, LM backends, step scorers and
test-time search (SPEC §3.1–3.3). Submodules import their heavy dependencies lazily."""

from __future__ import annotations

from reasonact.reasoning.mdp import STEP_BOUNDARY, State, render
from reasonact.reasoning.tree import Node, Tree

__all__ = ["STEP_BOUNDARY", "Node", "State", "Tree", "render"]
