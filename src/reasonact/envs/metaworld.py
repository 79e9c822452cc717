"""MetaWorld v3 tasks (Sawyer arm, MuJoCo) behind the `reasonact.envs.spec` contract.

The raw task class is built directly (not through `gym.make("Meta-World/MT1")`, whose
wrappers pick one of 50 pre-sampled goals at random): object and goal positions are drawn
from the environment's own seeded generator, so `reset(seed=s)` gives the same scene for the
same `s` and a fresh one for every other `s`. State "proprio" = hand xyz + gripper opening (4);
"full" and privileged = MetaWorld's 39-dim goal-observable vector.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reasonact.envs.phases import PhaseTracker
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
from reasonact.envs.tasks import TaskLanguage, metaworld_language

DEFAULT_CAMERA = "corner"
DEFAULT_MAX_STEPS = 300  # scripted experts finish MT10 tasks in 40–250 steps
GRIPPER_OPEN = 0.8  # normalised finger distance (obs[3]) above which the gripper counts as open
OBJECT_HALF_SIZE = 0.03  # half-extent (m) of the cube whose projection is an object's box
# Palette for object recolouring and for naming colours; held-out (object, colour) pairs come from it.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1),
    "green": (0.1, 0.7, 0.2),
    "blue": (0.15, 0.3, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "purple": (0.6, 0.2, 0.8),
    "orange": (1.0, 0.55, 0.05),
    "white": (0.95, 0.95, 0.95),
    "black": (0.08, 0.08, 0.08),
    "grey": (0.5, 0.5, 0.5),
}


def color_name(rgb: np.ndarray) -> str:
    """Nearest palette colour to an RGB triple in [0, 1]."""
    names = list(COLORS)
    dist = [float(np.sum((np.asarray(COLORS[n]) - rgb[:3]) ** 2)) for n in names]
    return names[int(np.argmin(dist))]


def metaworld_tasks() -> list[str]:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return list(ALL_V3_ENVIRONMENTS)


class MetaWorldEnv(OnDemandImages, gym.Env):
    """One MetaWorld v3 task; see the module docstring."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 80}
    action_dim = 4

    def __init__(self, config: EnvConfig) -> None:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        self.config, self.task = config, config.task
        self.language: TaskLanguage = metaworld_language(config.task)
        if config.instruction_task and config.instruction_task not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"instruction_task: expected a MetaWorld task, received {config.instruction_task!r}")
        self.told = metaworld_language(config.instruction_task or config.task)  # the language the env says
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = ALL_V3_ENVIRONMENTS[config.task]()
        # Goal-observable, freshly sampled positions from the env's own seeded generator.
        raw._partially_observable, raw._freeze_rand_vec, raw.seeded_rand_vec = False, False, True
        raw._set_task_called = True
        raw.__dict__.pop("sawyer_observation_space", None)  # cached with the goal hidden (zero bounds)
        raw.max_path_length = 10**9  # our own time limit below
        self.raw = raw
        self.max_steps = config.max_steps or DEFAULT_MAX_STEPS
        self.cameras = config.cameras or (DEFAULT_CAMERA,)
        self.renderer = CameraRenderer(raw.model, config.image_size or 64)
        self.renderer.check_cameras(self.cameras)
        self.render_mode = "rgb_array"
        state_dim = 4 if config.state == "proprio" else 39
        self.observation_space = observation_space(
            config.image_size, self.cameras if config.image_size else (), state_dim, 39 * config.privileged
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.phases = PhaseTracker(self.language.kind, len(self.language.phases))
        self._obj_geoms = self._body_geoms("obj")
        self._object_geoms, self._gripper_geoms = self._contact_sets()
        self._obs = np.zeros(39)
        self._reward, self._success, self._t, self._closing = 0.0, False, 0, False
        self._instruction, self._color = self.told.instruction, ""

    # --- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.raw.seed(seed)
        self._instruction = self._pick_instruction()
        self._color = self._recolor() if self.config.randomize_colors else self._native_color()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.raw.reset()
        self._obs = self._settled_obs()
        self._reward, self._success, self._t, self._closing = 0.0, False, 0, False
        self.phases.reset(self._obs[4:7])
        return self._observation(), self._info()

    def step(self, action):
        action = clip_action(action, self.action_space.low, self.action_space.high)
        self._obs, reward, _, _, info = self.raw.step(action)
        self._t += 1
        self._reward, self._success = float(reward), bool(info["success"])
        self._closing = bool(action[3] > 0)
        self.phases.update(self._obs[:3], self._obs[4:7], self._closing)
        terminated = self._success and self.config.terminate_on_success
        return self._observation(), self._reward, terminated, self._t >= self.max_steps, self._info()

    def render(self) -> np.ndarray:
        return self.renderer.render(self.raw.data, self.cameras[0])

    def close(self) -> None:
        self.renderer.close()
        self.raw.close()

    # --- the contract's extras ---------------------------------------------------------------
    @property
    def privileged_state(self) -> np.ndarray:
        return self._obs.copy()

    def scene(self) -> Scene:
        """Facts about the current state for captions, VQA and boxes (first camera)."""
        cam, data = self.cameras[0], self.raw.data
        hand, obj, goal = self._obs[:3], self._obs[4:7], self._obs[-3:]
        half = {"gripper": 0.04, self.language.obj: OBJECT_HALF_SIZE, "goal": 0.02}

        def item(name: str, pos: np.ndarray, color: str) -> SceneObject:
            box = cube_box(self.renderer, data, cam, pos, half[name])
            return SceneObject(name, tuple(float(v) for v in pos), color, box)

        objects = (item("gripper", hand, ""), item(self.language.obj, obj, self._color), item("goal", goal, ""))
        if self.task == "reach-v3":  # the puck stays out of the way in reach; talk about hand and goal only
            objects = (objects[0], objects[2])
        progress = 1.0 if self._success else float(np.clip(self._reward / 10.0, 0.0, 0.99))
        return Scene(
            self.task,
            objects,
            gripper_open=bool(self._obs[3] > GRIPPER_OPEN),
            contact=self._touching(),
            progress=progress,
            phase=self.phases.phase,
            phases=self.language.phases,
            image_size=self.renderer.size,
        )

    # --- internals ------------------------------------------------------------------------
    def _observation(self) -> EnvObservation:
        images = self.camera_images(
            self.cameras, self.config.image_size, lambda cam: self.renderer.render(self.raw.data, cam)
        )
        state = self._obs[:4] if self.config.state == "proprio" else self._obs
        obs: EnvObservation = {"images": images, "state": state.astype(np.float32), "instruction": self._instruction}
        if self.config.privileged:
            obs["privileged"] = self._obs.copy()
        return obs

    def _settled_obs(self) -> np.ndarray:
        """MetaWorld's reset observation predates the final object placement; recompute it."""
        import mujoco

        mujoco.mj_forward(self.raw.model, self.raw.data)
        current = self.raw._get_curr_obs_combined_no_goal()  # (18,)
        self.raw._prev_obs = current
        return np.hstack((current, current, self.raw._get_pos_goal()))

    def _info(self) -> dict[str, Any]:
        return {"success": self._success, "phase": self.phases.phase, "task": self.task}

    def _pick_instruction(self) -> str:
        lang = self.told
        choices = {
            "train": (lang.instruction,),
            "heldout": lang.heldout,
            "any": (lang.instruction, *lang.paraphrases),
        }[self.config.instruction]
        return choices[int(self.np_random.integers(len(choices)))]

    def _body_geoms(self, body: str) -> list[int]:
        import mujoco

        m = self.raw.model
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)
        return [g for g in range(m.ngeom) if m.geom_bodyid[g] == bid] if bid >= 0 else []

    def _contact_sets(self) -> tuple[set[int], set[int]]:
        """Geoms of movable scene objects, and geoms of the gripper (the hand's subtree)."""
        m = self.raw.model
        hand = m.body("hand").id
        robot_root = m.body_rootid[hand]
        static = {m.body_rootid[m.body(n).id] for n in ("world", "tablelink")}
        in_hand = {b for b in range(m.nbody) if self._descends(b, hand)}
        gripper = {g for g in range(m.ngeom) if m.geom_bodyid[g] in in_hand}
        objects = {g for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] not in static | {robot_root}}
        return objects, gripper

    def _descends(self, body: int, ancestor: int) -> bool:
        while body > 0:
            if body == ancestor:
                return True
            body = self.raw.model.body_parentid[body]
        return False

    def _touching(self) -> bool:
        data = self.raw.data
        for c in data.contact[: data.ncon]:
            pair = {int(c.geom1), int(c.geom2)}
            if pair & self._gripper_geoms and pair & self._object_geoms:
                return True
        return False

    def _native_color(self) -> str:
        m = self.raw.model
        if not self._obj_geoms:
            return ""
        g = self._obj_geoms[0]
        # MuJoCo draws an explicit geom rgba over the material's; the default grey means "use the material".
        explicit = not np.allclose(m.geom_rgba[g], (0.5, 0.5, 0.5, 1.0))
        rgba = m.geom_rgba[g] if explicit or m.geom_matid[g] < 0 else m.mat_rgba[m.geom_matid[g]]
        return color_name(np.asarray(rgba))

    def _recolor(self) -> str:
        if not self._obj_geoms:
            return self._native_color()
        name = list(COLORS)[int(self.np_random.integers(len(COLORS)))]
        m = self.raw.model
        for g in self._obj_geoms:
            m.geom_matid[g] = -1
            m.geom_rgba[g] = (*COLORS[name], 1.0)
        return name
