"""The one environment contract every simulator implements (MetaWorld, PushT, LIBERO, any registered `Simulator`).

`EnvObservation` (numpy, one env; the VLA's batched tensors are `reasonact.vla.contract.Observation`)
= `{"images": {camera: uint8 (h, w, 3)}, "state": float32 (s,), "instruction": str}`
(plus `"privileged"`: float64 (p,) when `EnvConfig.privileged`, for scripted experts only);
action = float32 (d,) in the action space; `info["success"]` is a bool on every step. Each
simulator adds a `scene()` describing its objects in world and image coordinates, which the
VLM co-training data is generated from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import gymnasium as gym
import numpy as np

from reasonact.checks import check_range

MAX_IMAGE_SIZE = 1024  # the largest square image the offscreen renderers are asked for
MIN_IMAGE_SIZE = 16  # below this objects are sub-pixel and boxes meaningless


class EnvObservation(TypedDict, total=False):
    images: dict[str, np.ndarray]  # camera → uint8 (h, w, 3)
    state: np.ndarray  # float32 (s,)
    instruction: str
    privileged: np.ndarray  # float64 (p,): full simulator state, only with EnvConfig.privileged


@dataclass(frozen=True)
class EnvConfig:
    """Everything that shapes an environment instance; the task name picks the simulator."""

    task: str = "pick-place-v3"  # a task name from `reasonact.envs.list_tasks()`
    image_size: int = 96  # square camera images (pixels); 0 renders no images (state-only)
    cameras: tuple[str, ...] = ()  # cameras to render; () = the simulator's default camera
    max_steps: int = 0  # episode time limit; 0 = the task's default
    state: str = "proprio"  # "proprio" (robot state only) or "full" (simulator state vector)
    privileged: bool = False  # add obs["privileged"] (full state) for scripted experts
    instruction: str = "train"  # "train" (canonical instruction), "heldout" (held-out paraphrases), "any"
    instruction_task: str = ""  # say this task's instruction instead ("" = the env's own): a same-scene MetaWorld
    # partner's, so a policy can be told to do B in A's scene (language following, `vla.language_following`)
    randomize_colors: bool = False  # recolour the manipulated object per episode (VLM held-out combos)
    terminate_on_success: bool = True  # end the episode (terminated=True) on the first successful step

    def __post_init__(self) -> None:
        if self.image_size != 0:
            check_range(self.image_size, "image_size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        check_range(self.max_steps, "max_steps", low=0)
        if self.state not in ("proprio", "full"):
            raise ValueError(f"state: expected 'proprio' or 'full', received {self.state!r}")
        if self.instruction not in ("train", "heldout", "any"):
            raise ValueError(f"instruction: expected 'train', 'heldout' or 'any', received {self.instruction!r}")

    def check_own_instruction(self, simulator: str) -> None:
        """For simulators that say only their own task's instruction: refuse another task's (`instruction_task`)."""
        if self.instruction_task not in ("", self.task):
            raise ValueError(
                f"instruction_task: {simulator} envs say their own task's instruction only (another "
                f"task's is MetaWorld's), received {self.instruction_task!r} for {self.task}"
            )


@dataclass(frozen=True)
class SceneObject:
    """One object as the VLM data describes it."""

    name: str  # noun used in language ("puck", "drawer handle", "gripper", "goal")
    position: tuple[float, float, float]  # world xyz (metres, or pixels/100 for 2-D simulators)
    color: str  # named colour, or "" when the object has none worth asking about
    box: tuple[float, float, float, float] | None  # (x0, y0, x1, y1) pixels in the first camera, None off-screen


@dataclass(frozen=True)
class Scene:
    """Simulator state turned into facts: what the captions, VQA and boxes are generated from."""

    task: str
    objects: tuple[SceneObject, ...]
    gripper_open: bool | None  # None for robots without a gripper
    contact: bool  # the robot touches the manipulated object
    progress: float  # task progress in [0, 1] (1 = success)
    phase: int  # index into the task's subtask phases
    phases: tuple[str, ...]  # the task's subtask phases in language
    image_size: int  # pixel size of the first camera the boxes refer to

    def object(self, name: str) -> SceneObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(f"scene of {self.task} has no object {name!r}; objects: {[o.name for o in self.objects]}")


class OnDemandImages:
    """What every env of the contract mixes in: its observation's camera images are rendered only while
    `images_wanted` (default True, so a plain env renders every observation).

    Rendering dominates a step (a 128 px MetaWorld frame costs ~10× its physics under software EGL), and a
    chunked policy reads an observation once per chunk: `reasonact.envs.rollout` sets `images_wanted` per
    sub-env (the vector env's `set_attr`) before each step or reset, True exactly for the observations its
    controllers or recordings will read. An observation taken with `images_wanted=False` holds zero images
    so that it still fits the observation space (vector envs batch it); the rollout never lets a controller
    read them (`rollout.ImagesNotRendered`).
    """

    images_wanted: bool = True

    def camera_images(self, cameras: tuple[str, ...], size: int, render: Callable[[str], np.ndarray]) -> dict:
        """{camera: uint8 (size, size, 3)}: `render(camera)` when wanted, zeros when not; {} when `size` is 0."""
        if not size:
            return {}
        if self.images_wanted:
            return {cam: render(cam) for cam in cameras}
        return {cam: np.zeros((size, size, 3), np.uint8) for cam in cameras}


def observation_space(image_size: int, cameras: tuple[str, ...], state_dim: int, privileged_dim: int) -> gym.Space:
    """The gymnasium Dict space shared by every simulator."""
    spaces: dict[str, gym.Space] = {
        "images": gym.spaces.Dict(
            {cam: gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8) for cam in cameras}
        ),
        "state": gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
        "instruction": gym.spaces.Text(max_length=256, charset=_CHARSET),
    }
    if privileged_dim:
        spaces["privileged"] = gym.spaces.Box(-np.inf, np.inf, (privileged_dim,), np.float64)
    return gym.spaces.Dict(spaces)


_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.'-")


def clip_action(action: Any, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Action at the env boundary → float32 (d,) clipped to [low, high] (float32 (d,) each); an action of
    another shape or with a non-finite value raises, naming it.

    This runs every step and the wrapper's budget is ≤ 1.1× the raw simulator's step time, so the
    common case is a few cheap operations (np.clip costs several of them): `out @ out` is finite
    exactly when every value is, unless huge values overflow it, which only takes the careful path.
    """
    if isinstance(action, np.ndarray) and action.shape == low.shape:
        out = action.astype(np.float32, copy=False)
        if math.isfinite(out @ out):
            return np.minimum(np.maximum(out, low), high)
    from reasonact.checks import as_float_array

    out = as_float_array(action, "action", low.shape).astype(np.float32)
    return np.minimum(np.maximum(out, low), high)
