"""A scripted PushT expert from privileged state (gym-pusht ships none).

Quasi-static pushing: the arena has no friction with the ground and full velocity damping, so
the T block moves only while the pusher pushes it, by about the distance pushed. The expert
alternates two pushes, with hysteresis:
* translate: push the block's centre of mass straight at the target's, from the far side
  (the contact point is the T's extent along the push direction plus the pusher radius);
* rotate: push the end of the T's bar perpendicular to it, from the side away from the stem,
  which turns the block about its centre of mass with little translation.
Push length shrinks with the remaining error, so the final corrections are small. To reach a
contact point the pusher circles the block at a safe radius, committing to one way round.
Measured success (300 steps): see docs/simulators.md.
"""

from __future__ import annotations

import numpy as np

from reasonact.envs.spec import EnvObservation

T_VERTICES = np.array(  # (8, 2) corners of the T's bar and stem in block coordinates (gym-pusht's add_tee)
    [[-60, 0], [60, 0], [60, 30], [-60, 30], [-15, 30], [15, 30], [15, 120], [-15, 120]], dtype=np.float64
)
COM = np.array([0.0, 45.0])  # the T's centre of mass in block coordinates
GOAL = np.array([256.0, 256.0, np.pi / 4])  # gym-pusht's fixed goal pose (x, y, angle)
LOW, HIGH = 18.0, 494.0  # reachable pusher positions inside the walls
PUSHER_GAP = 18.0  # pusher radius (15) + margin


def rotate(v: np.ndarray, angle: float) -> np.ndarray:
    """Rotate 2-D vectors (..., 2) by `angle` (pymunk's convention)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class PushTExpert:
    """See the module docstring; `act` needs `obs["privileged"]` = (pusher x, y, block x, y, angle)."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(
        self,
        radius: float = 105.0,
        push_step: float = 25.0,
        travel_step: float = 60.0,
        pos_tol: float = 1.5,
        angle_tol: float = 0.02,
    ) -> None:
        self.radius = radius  # circling radius around the block's centre of mass
        self.push_step, self.travel_step = push_step, travel_step  # largest target offsets per step
        self.pos_tol, self.angle_tol = pos_tol, angle_tol  # pixels, radians
        self.mode, self._way = "translate", 0.0

    def reset(self) -> None:
        self.mode, self._way = "translate", 0.0

    def act(self, obs: EnvObservation) -> np.ndarray:
        if "privileged" not in obs:
            raise ValueError("obs: the PushT expert needs obs['privileged']; build the env with privileged=True")
        state = np.asarray(obs["privileged"], dtype=np.float64)
        agent, block, angle = state[:2], state[2:4], float(state[4])
        centre = block + rotate(COM, angle)
        error = GOAL[:2] + rotate(COM, GOAL[2]) - centre
        dist, turn = float(np.linalg.norm(error)), wrap(GOAL[2] - angle)
        if self.mode == "translate" and dist < max(self.pos_tol, 0.5 * abs(np.degrees(turn))):
            self.mode = "rotate"
        if self.mode == "rotate" and (
            dist > 3 * self.pos_tol + 10 or (abs(turn) < self.angle_tol and dist > self.pos_tol)
        ):
            self.mode = "translate"
        if self.mode == "translate":
            contact, push = self._translation_contact(block, angle, centre, error, dist)
            remaining = dist
        else:
            side = 1.0 if turn > 0 else -1.0
            contact, push = (
                block + rotate(np.array([side * 50.0, -PUSHER_GAP]), angle),
                rotate(np.array([0.0, 1.0]), angle),
            )
            remaining = 0.8 * abs(np.degrees(turn))  # bar-end arc length (px) per degree, at 50 px from the axis
        rel = agent - contact
        along = float(rel @ push)
        lateral = rel - along * push
        if np.linalg.norm(lateral) < 12 and -12 < along < 60:  # lined up behind the contact: push
            target = agent + push * min(self.push_step, 0.5 + 0.8 * remaining) - lateral
        else:
            target = self._around(agent, centre, contact)
            step = target - agent
            norm = np.linalg.norm(step)
            if norm > self.travel_step:
                target = agent + step / norm * self.travel_step
        return np.clip(target, 15, 497).astype(np.float32)

    def _translation_contact(self, block, angle, centre, error, dist) -> tuple[np.ndarray, np.ndarray]:
        """Contact point and push direction that move the centre along `error`; when the wall leaves
        no room behind the block, the reachable direction closest to it."""
        vertices = block + rotate(T_VERTICES, angle)  # (8, 2)
        wanted = error / max(dist, 1e-6)
        candidates = [wanted] + [
            np.array([np.cos(a), np.sin(a)]) for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ]
        best, choice = -np.inf, None
        for direction in candidates:
            contact = centre - direction * (np.max((vertices - centre) @ -direction) + PUSHER_GAP)
            score = 2.0 if direction is wanted else float(direction @ wanted)
            if np.all(contact >= LOW + 2) and np.all(contact <= HIGH - 2) and score > best:
                best, choice = score, (contact, direction)
        if choice is None:  # nothing reachable: try the wanted push anyway
            return centre - wanted * (np.max((vertices - centre) @ -wanted) + PUSHER_GAP), wanted
        return choice

    def _around(self, agent, centre, contact) -> np.ndarray:
        """Next waypoint towards `contact` that circles the block instead of crossing it."""
        a, g = agent - centre, contact - centre
        delta = wrap(np.arctan2(g[1], g[0]) - np.arctan2(a[1], a[0]))
        if abs(delta) < 0.35:  # facing the contact point: go straight in
            self._way = 0.0
            return contact
        if np.linalg.norm(a) < self.radius - 10:  # too close: back off radially first
            return centre + a / max(np.linalg.norm(a), 1e-6) * self.radius
        if not self._way:  # commit to one way round until the contact is reached (no dithering)
            self._way = np.sign(delta)
        heading = np.arctan2(a[1], a[0]) + self._way * min(abs(delta), 0.6)
        return np.clip(centre + self.radius * np.array([np.cos(heading), np.sin(heading)]), LOW, HIGH)
