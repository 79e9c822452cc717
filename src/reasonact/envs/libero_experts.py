"""Scripted LIBERO experts from privileged state: goal predicates → grasp and place waypoints → OSC_POSE actions.

LIBERO ships no experts, so this one reads object poses and world bounding boxes from
`obs["privileged"]` (layout: `reasonact.envs.libero`) and works through the task's BDDL goal
predicates in order. Each pick-and-place predicate (`On`/`In`) is a closed-loop waypoint machine:
above the grasp → down → close → lift → carry (re-aimed every step from the object's live position,
so slips are corrected) → lower until the object's base clears the target's top → open → retreat.
Bowls and plates are grasped at the rim (the robot's side unless another object is in the way),
everything else at the top with the fingers across the narrower side, slid along the longer side
when a taller neighbour would be under the hand; a grasp that lifts nothing is retried another
way. The hand reaches a grasp over taller objects (up, across, down), ignoring the fixture the
object sits in or on. Flat objects going to a table region are pushed. Articulation predicates
(drawers, knobs) are not scripted: the expert skips them, so those tasks fail honestly
(docs/libero.md has the measured per-task success).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reasonact.envs.libero import ENTITY_DIM, PRIVILEGED_HEAD, entity_names
from reasonact.envs.libero_tasks import resolve
from reasonact.envs.spec import EnvObservation

POS_SCALE = 0.05  # metres per unit of position action (OSC_POSE output_max)
ROT_SCALE = 0.5  # radians per unit of rotation action
REACHED = 0.008  # waypoint tolerance (m)
CLEARANCE = 0.08  # height (m) above the grasp point of the approach waypoint
CARRY_MARGIN = 0.06  # how far (m) the carried object's base clears the target's top while carrying
RELEASE_HEIGHT = 0.015  # gap (m) between the object's base and the target's top when the gripper opens
GRIP_STEPS, RELEASE_STEPS = 12, 8  # steps to close and to open the fingers
RIM_GRASPED = ("bowl", "plate")  # objects picked by their rim (too wide for the open fingers)
RIM_INSET, RIM_DEPTH = 0.02, 0.02  # rim grasp point: this far (m) inside the outline and below the top
FINGER_SPREAD = 0.045  # distance (m) of each open finger from the grasp point
FINGER_CLEARANCE = 0.015  # free space (m) around both fingers for a rim side to count as free
HAND_HALF = (0.1, 0.035)  # the Panda hand's half extent (m) along the finger axis and across it
HAND_ABOVE = 0.03  # height (m) of the hand's underside over the grasp point (a taller neighbour stops the descent)
MAX_GRIP = 0.07  # widest object side (m) the open fingers close across
SLIDE_MARGIN = 0.015  # an off-centre top grasp keeps the fingers this far (m) inside the object's ends
FLAT = 0.03  # objects lower than this (m) going to a table region are pushed rather than picked (plates)
PUSH_HEIGHT, PUSH_GAP = 0.012, 0.02  # pusher height over the object's base, start gap behind its edge (m)
PICK_STAGES = ("above", "down", "close", "lift", "carry", "lower", "release", "retreat")
HAND_RADIUS = 0.05  # margin (m) kept around the hand when passing over objects
STALL_STEPS = 12  # a waypoint not approached for this many steps counts as reached (blocked by contact)
POS_GAIN, ROT_GAIN = 2.0, 3.0  # proportional gains on the position and orientation errors (action units per unit)
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # gripper pointing down, fingers along world y


@dataclass(frozen=True)
class Entity:
    """One goal entity as the privileged vector describes it."""

    pos: np.ndarray  # (3,) body origin (world)
    lo: np.ndarray  # (3,) world AABB min
    hi: np.ndarray  # (3,) world AABB max
    heading: np.ndarray  # (2,) body x-axis in the table plane
    joint: float  # articulation value (0 for free bodies)


def parse_privileged(vector: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray, dict, list]:
    """(eef xyz (3,), eef rotation (3, 3), {goal entity name: Entity}, [obstacle Entity, …])."""
    rows = vector[PRIVILEGED_HEAD:].reshape(-1, ENTITY_DIM)  # (entities + obstacles, ENTITY_DIM)
    bodies = [Entity(e[:3], e[3:6], e[6:9], e[9:11], float(e[11])) for e in rows]
    return vector[:3], vector[3:12].reshape(3, 3), dict(zip(names, bodies, strict=False)), bodies[len(names) :]


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of target · currentᵀ: the world-frame rotation OSC_POSE should apply."""
    err = target @ current.T
    angle = np.arccos(np.clip((np.trace(err) - 1) / 2, -1.0, 1.0))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([err[2, 1] - err[1, 2], err[0, 2] - err[2, 0], err[1, 0] - err[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


def yaw_rotation(yaw: float) -> np.ndarray:
    """DOWN turned by `yaw` about the world z axis."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ DOWN


class LiberoExpert:
    """Scripted expert for one LIBERO task (`make_expert("libero_spatial/…")`); needs `privileged=True`."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, task: str) -> None:
        self.task = task
        self.goal = resolve(task).goal
        self.names = entity_names(self.goal)
        self.reset()

    def reset(self) -> None:
        self._predicate, self._stage, self._t, self._best, self._stalled = 0, "above", 0, np.inf, 0
        self._grasp_at, self._carry_z, self._rotation = np.zeros(3), 0.0, DOWN  # frozen at grasp time
        self._lift_from, self._attempt = 0.0, 0  # object base height before the grasp; grasp attempts so far
        self._push_mode: bool | None = None  # push or pick, decided once per predicate from the first observation

    def act(self, obs: EnvObservation) -> np.ndarray:
        if "privileged" not in obs:
            raise ValueError("obs: the LIBERO expert needs obs['privileged']; build the env with privileged=True")
        eef, rot, entities, obstacles = parse_privileged(np.asarray(obs["privileged"]), self.names)
        if self._predicate >= len(self.goal):
            return self._command(eef, rot, eef, -1.0)
        op, *args = self.goal[self._predicate]
        if op not in ("on", "in"):
            self._predicate += 1  # articulation predicates are not scripted (module docstring)
            return self._command(eef, rot, eef, -1.0)
        obj, target = entities[args[0]], entities[args[1]]
        others = [e for n, e in entities.items() if n != args[0]] + obstacles
        if self._push_mode is None:  # a flat object going to a region of the table slides there
            self._push_mode = bool(obj.hi[2] - obj.lo[2] < FLAT and "_table_" in args[1])
        if self._push_mode:
            return self._push(eef, rot, obj, target, others)
        return self._pick_place(eef, rot, obj, target, args[0], others)

    # --- push ----------------------------------------------------------------------------------
    def _push(self, eef: np.ndarray, rot: np.ndarray, obj: Entity, target: Entity, others: list[Entity]) -> np.ndarray:
        """Closed fingers behind the object, low over the table, then slide it until its origin is on the target's."""
        error = target.pos[:2] - obj.pos[:2]
        direction = error / max(float(np.linalg.norm(error)), 1e-9)
        radius = float(np.max(obj.hi[:2] - obj.lo[:2])) / 2
        low = obj.lo[2] + PUSH_HEIGHT
        if self._stage in ("above", "down"):
            self._grasp_at = np.array([*(obj.pos[:2] - direction * (radius + PUSH_GAP)), low])
        start = self._grasp_at
        hold = False
        if self._stage == "above":
            above = start + np.array([0.0, 0.0, CLEARANCE])
            goal = self._approach(eef, above, [o for o in others if not self._holds(o, obj)])
            hold = not np.array_equal(goal, above)
        elif self._stage == "down":
            goal = start
        elif self._stage == "push":
            goal = np.array([*(eef[:2] + error), low])
        else:  # retreat
            goal = np.array([*eef[:2], low + CLEARANCE])
        self._advance(eef, goal, ("above", "down", "push", "retreat"), hold=hold)
        return self._command(eef, rot, goal, 1.0)

    # --- pick and place ------------------------------------------------------------------------
    def _pick_place(
        self, eef: np.ndarray, rot: np.ndarray, obj: Entity, target: Entity, name: str, others: list[Entity]
    ) -> np.ndarray:
        stage = self._stage
        base = eef[2] - obj.lo[2]  # eef height above the object's base (constant once grasped)
        if stage in ("above", "down"):  # frozen once the fingers close
            grasp, yaw = self._grasp(obj, name, others)
            self._grasp_at, self._rotation, self._lift_from = grasp, yaw_rotation(yaw), obj.lo[2]
            self._carry_z = max(target.hi[2] + CARRY_MARGIN + grasp[2] - obj.lo[2], grasp[2] + CLEARANCE)
        grasp, carry_z = self._grasp_at, self._carry_z
        aim = eef[:2] + target.pos[:2] - obj.pos[:2]  # eef xy that puts the object's origin over the target's
        above = grasp + np.array([0.0, 0.0, CLEARANCE])
        if stage == "above":
            goal, grip = self._approach(eef, above, [o for o in others if not self._holds(o, obj)]), -1.0
        elif stage == "down":
            goal, grip = grasp, -1.0
        elif stage == "close":
            goal, grip = grasp, 1.0
        elif stage == "lift":
            goal, grip = np.array([*eef[:2], carry_z]), 1.0
        elif stage == "carry":
            goal, grip = np.array([*aim, carry_z]), 1.0
        elif stage == "lower":
            goal, grip = np.array([*aim, target.hi[2] + RELEASE_HEIGHT + base]), 1.0
        elif stage == "release":
            goal, grip = eef, -1.0
        else:  # retreat
            goal, grip = np.array([*eef[:2], carry_z]), -1.0
        hold = stage == "above" and not np.array_equal(goal, above)  # a detour waypoint is not the approach
        self._advance(eef, goal, PICK_STAGES, obj.lo[2] > self._lift_from + 0.015, hold)
        return self._command(eef, rot, goal, grip)

    def _grasp(self, obj: Entity, name: str, others: list[Entity]) -> tuple[np.ndarray, float]:
        """Grasp point (3,) and gripper yaw: a bowl's rim on its freest side (the robot's side first), otherwise
        the top with the fingers across the narrower side, at the centre or slid along the longer side when a
        taller neighbour is under the hand. A failed attempt moves on to the next choice."""
        centre, size = (obj.lo + obj.hi) / 2, obj.hi - obj.lo
        if not any(word in name for word in RIM_GRASPED):
            z = obj.hi[2] - min(0.03, size[2] / 2)
            across = 0.0 if size[1] <= size[0] else np.pi / 2  # fingers close along world y at yaw 0
            along = np.array([1.0, 0.0]) if size[1] <= size[0] else np.array([0.0, 1.0])  # the longer side
            slide = max(0.0, float(size[:2].max()) / 2 - SLIDE_MARGIN) * along
            choices = [(centre[:2], across), (centre[:2] - slide, across), (centre[:2] + slide, across)]
            if size[:2].max() < MAX_GRIP:  # the longer side fits between the fingers too
                choices.append((centre[:2], across + np.pi / 2))
            fingers = [self._clearance(xy, yaw, z, others) for xy, yaw in choices]
            hand = [self._hand_clearance(xy, yaw, z, others) for xy, yaw in choices]
            n = len(choices)
            clear = [i for i in range(n) if fingers[i] > FINGER_CLEARANCE and hand[i] > 0]
            ranked = clear + sorted(range(n), key=lambda i: -min(fingers[i], hand[i]))
            xy, yaw = choices[ranked[self._attempt % len(ranked)]]
            return np.array([xy[0], xy[1], z]), yaw
        z = obj.hi[2] - min(RIM_DEPTH, size[2] / 2)
        inset = size[:2] / 2 - RIM_INSET
        sides = [
            ((-inset[0], 0.0), np.pi / 2),  # the robot's side first: the arm reaches it with the elbow bent
            ((0.0, -inset[1]), 0.0),
            ((0.0, inset[1]), 0.0),
            ((inset[0], 0.0), np.pi / 2),
        ]
        free = [self._clearance(centre[:2] + offset, yaw, z, others) for offset, yaw in sides]
        ranked = [i for i in range(4) if free[i] > FINGER_CLEARANCE] + sorted(range(4), key=lambda i: -free[i])
        offset, yaw = sides[ranked[self._attempt % 4]]
        return np.array([centre[0] + offset[0], centre[1] + offset[1], z]), yaw

    @staticmethod
    def _holds(other: Entity, obj: Entity) -> bool:
        """`other` is what `obj` sits on or in (its table-plane box contains obj's origin: a drawer's cabinet,
        a stove): the hand must reach into its box, so it is no obstacle on the way to `obj`."""
        return bool(np.all(other.lo[:2] <= obj.pos[:2]) and np.all(obj.pos[:2] <= other.hi[:2]))

    @staticmethod
    def _approach(eef: np.ndarray, goal: np.ndarray, others: list[Entity]) -> np.ndarray:
        """The next waypoint towards `goal` that keeps the hand above every object under the straight path:
        when something taller lies in the way, straight up, then across at that height, then down onto `goal`."""
        if np.linalg.norm(goal[:2] - eef[:2]) < 2 * REACHED:  # over the goal: straight down
            return goal
        path = eef[:2] + np.linspace(0.0, 1.0, 12)[:, None] * (goal[:2] - eef[:2])  # (12, 2)
        tops = [
            o.hi[2]
            for o in others
            if np.any(np.all((path > o.lo[:2] - HAND_RADIUS) & (path < o.hi[:2] + HAND_RADIUS), axis=1))
        ]
        travel = max(tops, default=-np.inf) + HAND_RADIUS
        if goal[2] >= travel:
            return goal
        return np.array([*(eef[:2] if eef[2] < travel - REACHED else goal[:2]), travel])

    @staticmethod
    def _clearance(point: np.ndarray, yaw: float, z: float, others: list[Entity]) -> float:
        """Smallest table-plane distance (m) from either open finger to an object that reaches up to the fingers."""
        axis = np.array([np.sin(yaw), np.cos(yaw)])  # the fingers' closing direction
        fingers = [point + FINGER_SPREAD * axis, point - FINGER_SPREAD * axis]
        gaps = [
            float(np.linalg.norm(np.maximum(np.maximum(o.lo[:2] - f, f - o.hi[:2]), 0.0)))
            for o in others
            if o.hi[2] > z - 0.02
            for f in fingers
        ]
        return min(gaps, default=1.0)

    @staticmethod
    def _hand_clearance(point: np.ndarray, yaw: float, z: float, others: list[Entity]) -> float:
        """Smallest table-plane distance (m) from the hand's footprint, grasping at `point`, to an object tall
        enough to reach the hand's underside."""
        axis = np.array([np.sin(yaw), np.cos(yaw)])  # the fingers' closing direction
        side = np.array([axis[1], -axis[0]])
        footprint = [
            point + u * HAND_HALF[0] * axis + v * HAND_HALF[1] * side for u in np.linspace(-1, 1, 5) for v in (-1, 0, 1)
        ]
        gaps = [
            float(np.linalg.norm(np.maximum(np.maximum(o.lo[:2] - p, p - o.hi[:2]), 0.0)))
            for o in others
            if o.hi[2] > z + HAND_ABOVE
            for p in footprint
        ]
        return min(gaps, default=1.0)

    def _advance(
        self, eef: np.ndarray, goal: np.ndarray, order: tuple[str, ...], lifted: bool = True, hold: bool = False
    ) -> None:
        """Next stage when the waypoint is reached (or stalls), or a timed stage is over; next predicate at the end.
        `hold`: the waypoint is a detour (over an obstacle), so reaching it does not end the stage."""
        self._t += 1
        dist = float(np.linalg.norm(goal - eef))
        self._stalled = 0 if dist < self._best - 1e-3 else self._stalled + 1
        self._best = min(self._best, dist)
        timed = {"close": GRIP_STEPS, "release": RELEASE_STEPS}
        reached = dist < REACHED or self._stalled >= STALL_STEPS
        done = self._t >= timed[self._stage] if self._stage in timed else reached and not hold
        if not done:
            return
        index = order.index(self._stage) + 1
        if self._stage == "lift" and not lifted:  # the object stayed behind: grasp again, another way
            index, self._attempt = 0, self._attempt + 1
        if index == len(order):
            self._predicate, index, self._push_mode = self._predicate + 1, 0, None
        self._stage, self._t, self._best, self._stalled = order[index], 0, np.inf, 0

    def _command(self, eef: np.ndarray, rot: np.ndarray, goal: np.ndarray, grip: float) -> np.ndarray:
        """OSC_POSE action (7,): proportional position and orientation deltas, gripper ±1."""
        move = np.clip(POS_GAIN * (goal - eef) / POS_SCALE, -1.0, 1.0)
        turn = np.clip(ROT_GAIN * rotation_error(self._rotation, rot) / ROT_SCALE, -1.0, 1.0)
        return np.concatenate([move, turn, [grip]]).astype(np.float32)
