"""PushT (`gym-pusht`, 2-D pymunk) behind the `reasonact.envs.spec` contract, and a state-based expert.

Action = target position (x, y) of the round pusher in the 512 × 512 arena (float32 (2,));
state "proprio" = pusher position (2), "full"/privileged = (pusher x, y, block x, y, angle).
Success = the T block covers ≥ 95 % of its target outline. Images are the simulator's own
pygame drawing at `image_size`; arena coordinates map to pixels by `image_size / 512`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reasonact.envs.phases import PhaseTracker
from reasonact.envs.spec import (
    EnvConfig,
    EnvObservation,
    OnDemandImages,
    Scene,
    SceneObject,
    clip_action,
    observation_space,
)
from reasonact.envs.tasks import PUSHT

ARENA = 512.0  # arena side length (simulator units)
DEFAULT_MAX_STEPS = 300
SIZES = {"pusher": 15.0, "T block": 60.0, "target": 60.0}  # half-extents (arena units) for boxes
COLORS = {"pusher": "blue", "T block": "grey", "target": "green"}  # as gym-pusht draws them


class PushTEnv(OnDemandImages, gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}
    action_dim = 2

    def __init__(self, config: EnvConfig) -> None:
        from gym_pusht.envs.pusht import PushTEnv as RawPushT

        if config.cameras not in ((), ("top",)):
            raise ValueError(f"cameras: PushT has one camera ('top'), received {list(config.cameras)}")
        config.check_own_instruction("PushT")
        self.config, self.task, self.language = config, config.task, PUSHT
        size = config.image_size or 96
        self.raw = RawPushT(obs_type="state", observation_width=size, observation_height=size)
        self.size, self.cameras = size, ("top",)
        self.max_steps = config.max_steps or DEFAULT_MAX_STEPS
        self.render_mode = "rgb_array"
        cams = self.cameras if config.image_size else ()
        self.observation_space = observation_space(
            config.image_size, cams, 2 if config.state == "proprio" else 5, 5 * config.privileged
        )
        self.action_space = gym.spaces.Box(0.0, ARENA, (2,), np.float32)
        self.phases = PhaseTracker("push", 2, moved=2.0, reach_radius=40.0)
        self._state, self._success, self._t, self._coverage, self._contacts = np.zeros(5), False, 0, 0.0, 0
        self._instruction = PUSHT.instruction

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._state, _ = self.raw.reset(seed=int(self.np_random.integers(2**31)))
        choices = {
            "train": (PUSHT.instruction,),
            "heldout": PUSHT.heldout,
            "any": (PUSHT.instruction, *PUSHT.paraphrases),
        }
        options_ = choices[self.config.instruction]
        self._instruction = options_[int(self.np_random.integers(len(options_)))]
        self._success, self._t, self._coverage, self._contacts = False, 0, 0.0, 0
        self.phases.reset(self._state[2:4])
        return self._observation(), self._info()

    def step(self, action):
        action = clip_action(action, self.action_space.low, self.action_space.high)
        self._state, _, _, _, info = self.raw.step(action)
        self._t += 1
        self._success, self._coverage = bool(info["is_success"]), float(info["coverage"])
        self._contacts = int(info["n_contacts"])
        self.phases.update(self._state[:2], self._state[2:4], closing=False)
        reward = min(max(self._coverage / self.raw.success_threshold, 0.0), 1.0)  # np.clip: 10× the cost
        terminated = self._success and self.config.terminate_on_success
        return self._observation(), reward, terminated, self._t >= self.max_steps, self._info()

    def render(self) -> np.ndarray:
        return self.raw._render(visualize=False)

    def close(self) -> None:
        self.raw.close()

    @property
    def privileged_state(self) -> np.ndarray:
        return self._state.copy()

    def scene(self) -> Scene:
        goal = np.asarray(self.raw.goal_pose[:2], dtype=np.float64)
        positions = {"pusher": self._state[:2], "T block": self._state[2:4], "target": goal}
        objects = tuple(
            SceneObject(name, (*(p / 100.0), 0.0), COLORS[name], self._box(p, SIZES[name]))
            for name, p in positions.items()
        )
        return Scene(
            self.task,
            objects,
            gripper_open=None,
            contact=self._contacts > 0,
            progress=1.0 if self._success else min(self._coverage / self.raw.success_threshold, 0.99),
            phase=self.phases.phase,
            phases=PUSHT.phases,
            image_size=self.size,
        )

    def _box(self, centre: np.ndarray, half: float) -> tuple[float, float, float, float]:
        scale = self.size / ARENA
        x0, y0 = np.clip((centre - half) * scale, 0, self.size)
        x1, y1 = np.clip((centre + half) * scale, 0, self.size)
        return (float(x0), float(y0), float(x1), float(y1))

    def _observation(self) -> EnvObservation:
        images = self.camera_images(self.cameras, self.config.image_size, lambda cam: self.raw._render(visualize=False))
        state = self._state[:2] if self.config.state == "proprio" else self._state
        obs: EnvObservation = {"images": images, "state": state.astype(np.float32), "instruction": self._instruction}
        if self.config.privileged:
            obs["privileged"] = self._state.copy()
        return obs

    def _info(self) -> dict[str, Any]:
        return {"success": self._success, "phase": self.phases.phase, "task": self.task, "coverage": self._coverage}
