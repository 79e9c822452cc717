"""Subtask phase labels from simulator state ("reach the puck" → "grasp the puck" → "move …").

The scripted experts are state machines whose stages are not exposed, so the phase is read
back from what the stages achieve: the hand reaching the object, the gripper closing on it, the
object starting to move. Phases only advance (a running maximum), so a label sequence is
monotone and ends in the last phase whenever the object was moved.
"""

from __future__ import annotations

import math

import numpy as np

REACH_RADIUS = 0.05  # hand-object distance (m) under which the object counts as reached
MOVED = 0.01  # object displacement (m) from its start that counts as moving it


class PhaseTracker:
    """Tracks the phase index of one episode; `kind` is a `TaskLanguage.kind`."""

    def __init__(self, kind: str, n_phases: int, moved: float = MOVED, reach_radius: float = REACH_RADIUS) -> None:
        if kind not in ("reach", "push", "grasp"):
            raise ValueError(f"kind: expected 'reach', 'push' or 'grasp', received {kind!r}")
        self.kind, self.n_phases, self.moved, self.reach_radius = kind, n_phases, moved, reach_radius
        self.phase = 0
        self._start: np.ndarray | None = None

    def reset(self, obj: np.ndarray) -> int:
        self.phase, self._start = 0, np.array(obj, dtype=np.float64)
        return self.phase

    def update(self, hand: np.ndarray, obj: np.ndarray, closing: bool) -> int:
        """Advance from the current state: hand and object positions, whether the gripper closes."""
        assert self._start is not None, "reset() first"
        moved = math.dist(obj, self._start) > self.moved  # math.dist: a fraction of np.linalg.norm's cost per step
        near = math.dist(hand, obj) < self.reach_radius
        if self.kind == "push":
            target = 1 if moved else 0
        elif self.kind == "grasp":
            target = 2 if (moved and closing) else 1 if (near and closing) else 0
        else:
            target = 0
        self.phase = min(max(self.phase, target), self.n_phases - 1)
        return self.phase
