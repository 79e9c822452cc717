"""Journey Learning (O1-Journey, Qin et al. 2024): trees built by a propose–critique loop, and
the long thoughts derived from them (the shortcut vs the journey)."""

from __future__ import annotations

from reasonact.journey.construct import ConstructConfig, JourneyTree, construct_trees
from reasonact.journey.critic import (
    ACTIONS,
    REFLECT,
    CheckerCritic,
    Critic,
    LMCritic,
    ScorerCritic,
    Verdict,
    reflection,
)
from reasonact.journey.derive import Thought, journey, parse_thought, shortcut, to_example

__all__ = [
    "ACTIONS",
    "REFLECT",
    "CheckerCritic",
    "ConstructConfig",
    "Critic",
    "JourneyTree",
    "LMCritic",
    "ScorerCritic",
    "Thought",
    "Verdict",
    "construct_trees",
    "journey",
    "parse_thought",
    "reflection",
    "shortcut",
    "to_example",
]
