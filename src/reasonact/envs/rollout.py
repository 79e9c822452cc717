"""The one rollout loop: controllers acting in a vectorised env from given seeds → one record per episode.

Demonstrations (`reasonact.data.collect`), tokenizer trajectories (`reasonact.data.trajectories`),
VLM data (`reasonact.data.vlm`), evaluation (`reasonact.evaluation.harness`), the demo and the
benchmarks all run episodes here.
Each sub-env has its own controller, asked for whenever an episode starts (so memory never leaks
between episodes running side by side), and a finished sub-env is reset with the next seed: an
episode is a function of its seed and its controller, whatever the number of sub-envs.

A controller maps one observation to one action (d,) or an action chunk (H, d); the loop executes
`execute_steps` actions of a chunk (all when 0) before asking again, so per-step controllers
(scripted experts) and chunked ones (π0, FAST) plug in the same way. A `BatchController` (a learned
policy) instead acts for all sub-envs at once: the loop passes it the vector env's batched
observation, so one forward pass serves every sub-env that needs an action.

Camera images are rendered on demand (`spec.OnDemandImages`): before each step and reset the loop tells
every sub-env whether its next observation will be read, i.e. whether its episode is recorded with
"images", or its controller will be asked for an action (its queue is empty; a `BatchController` with
`observes` says which of its sub-envs it will read) and reads images (a controller with
`reads_images = False`, like the scripted experts and state-only baselines, never does). A chunked policy
thus renders once per chunk instead of every step, with the same episodes. Rows that were not rendered
reach controllers as `Frames` / `NotRendered`, which raise `ImagesNotRendered` when read: a controller
sees fresh images or an error, never a placeholder.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from reasonact.envs.spec import EnvObservation

RECORDABLE = ("images", "state", "scene", "probe", "action", "reward", "success", "phase")  # what `record` may name


@runtime_checkable
class Controller(Protocol):
    """What acts in an env: `reset()` when an episode starts, then `act(obs)` until it ends."""

    def reset(self) -> None: ...
    def act(self, obs: EnvObservation) -> np.ndarray: ...  # (d,) one action or (H, d) an action chunk


# A controller (or BatchController) may set `reads_images = False`: it never reads obs["images"], so the
# loop renders for it only the frames that are recorded. Absent means True.


ControllerFor = Callable[[int, int], Controller]  # (sub-env index, episode seed) → the controller of that episode
# (sub-env index, steps taken in its episode, whether that episode has ended) → what to record of the
# sub-env's current state (`record=("probe",)`); it may return None for steps its caller skips
Probe = Callable[[int, int, bool], object]


@runtime_checkable
class BatchController(Protocol):
    """What acts for all sub-envs at once: `begin(slot, seed)` when sub-env `slot` starts the episode of
    `seed` (per-sub-env memory starts afresh), then `act_batch(obs, slots)` with the vector env's batched
    observation and the sub-envs that need an action → (len(slots), d) actions or (len(slots), H, d) chunks."""

    def begin(self, slot: int, seed: int) -> None: ...
    def act_batch(self, obs: dict, slots: list[int]) -> np.ndarray: ...


# A BatchController may also have `observes(slots) -> list[int]`: the sub-envs among `slots` whose
# observation its next `act_batch` reads (a chunked policy: those whose own action queue is empty). The
# loop renders images only for those; without it, every sub-env asked for an action is rendered for.


class ImagesNotRendered(RuntimeError):
    """A controller read camera images the rollout did not render for that step (module docstring)."""


class NotRendered(Mapping):
    """Sub-env `i`'s obs["images"] on a step its images were not rendered: the cameras are listed, reading
    one raises `ImagesNotRendered`."""

    def __init__(self, cameras: Sequence[str], i: int) -> None:
        self.cameras, self.i = tuple(cameras), i

    def __getitem__(self, camera: str) -> np.ndarray:
        raise ImagesNotRendered(_unrendered_message([self.i], camera))

    def __iter__(self) -> Iterator[str]:
        return iter(self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)


class Frames:
    """One camera's batched images uint8 (n, h, w, 3) of which only `rendered` (n,) rows were rendered
    this step: `frames[rows]` returns them, and raises `ImagesNotRendered` when a row was not rendered
    (so does `np.asarray(frames)` unless every row was)."""

    def __init__(self, camera: str, images: np.ndarray, rendered: np.ndarray) -> None:
        self.camera, self.images, self.rendered = camera, images, rendered
        self.shape, self.dtype = images.shape, images.dtype

    def __getitem__(self, rows) -> np.ndarray:
        asked = np.atleast_1d(np.arange(len(self.images))[rows])
        missing = asked[~self.rendered[asked]]
        if missing.size:
            raise ImagesNotRendered(_unrendered_message(missing.tolist(), self.camera))
        return self.images[rows]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)

    def __len__(self) -> int:
        return len(self.images)


def _unrendered_message(subenvs: list[int], camera: str) -> str:
    return (
        f"obs['images'][{camera!r}] of sub-env(s) {subenvs} was not rendered for this step: the rollout "
        "renders images only for sub-envs whose controller it asks for an action (or whose episode records "
        "images); a controller with `reads_images = False`, or a BatchController reading rows its "
        "`observes(slots)` left out, must not read them (a batched one indexes its rows first: "
        "obs['images'][camera][slots])"
    )


@dataclass
class Episode:
    """One finished episode; `frames` holds what `record` asked for, one entry per step."""

    seed: int  # the seed its env was reset with
    success: bool  # info["success"] at its last step
    length: int  # steps taken
    instruction: str  # the instruction its observations carried
    seconds: float  # wall time from its reset to its last step (acting and stepping)
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    # "images/<camera>": uint8 (T, h, w, 3) observed before each action; "state": (T, s) and "scene":
    # object (T,) of `Scene`s (the env's `scene()`, for VLM data) likewise;
    # "action": float32 (T, d) executed; "reward": (T,); "success": bool (T,) after each step;
    # "phase": int64 (T,) the subtask phase each action serves (the later of before and after it);
    # "probe": object (T,) the `probe`'s output before each action
    final_images: dict[str, np.ndarray] = field(default_factory=dict)  # camera → the last observation's frame
    final_probe: object = None  # the `probe`'s output after the last step (when "probe" is recorded)


class SimulatorCrash(RuntimeError):
    """A sub-env raised, or its worker process died, during reset or step; `seeds` were in flight."""

    def __init__(self, message: str, seeds: list[int]) -> None:
        super().__init__(message)
        self.seeds = seeds


def unbatch(obs: dict, i: int) -> EnvObservation:
    """Sub-env `i`'s observation out of a vector env's batched one (images as `NotRendered` when row `i` of
    its `Frames` was not rendered)."""
    images = obs["images"]
    unread = any(isinstance(v, Frames) and not v.rendered[i] for v in images.values())
    out: EnvObservation = {
        "images": NotRendered(list(images), i) if unread else {cam: v[i] for cam, v in images.items()},
        "state": obs["state"][i],
        "instruction": obs["instruction"][i],
    }
    if "privileged" in obs:
        out["privileged"] = obs["privileged"][i]
    return out


def as_chunk(action: np.ndarray, dim: int, execute: int) -> deque[np.ndarray]:
    """A controller's output (d,) or (H, d) → the actions (d,) to execute before asking it again."""
    action = np.asarray(action, dtype=np.float32)
    if action.shape == (dim,):
        return deque([action])
    if action.ndim != 2 or action.shape[1] != dim or not len(action):
        raise ValueError(
            f"controller.act: expected an action ({dim},) or a chunk (H, {dim}), received shape {action.shape}"
        )
    return deque(action[: execute or len(action)])


class _Slot:
    """The episode running on one sub-env and what is recorded of it."""

    def __init__(self, index: int, seed: int, controller: Controller | None, record: tuple[str, ...]) -> None:
        self.index, self.seed, self.controller = index, seed, controller  # None: a BatchController acts
        self.record, self.frames = record, {key: [] for key in record if key != "images"}
        self.queue: deque[np.ndarray] = deque()
        self.length, self.phase, self.instruction, self.start = 0, 0, "", 0.0
        if controller is not None:
            controller.reset()

    def begin(self, obs: dict, info: dict, i: int) -> None:
        """After its env's reset."""
        self.instruction, self.start = str(obs["instruction"][i]), time.perf_counter()
        self.phase = int(info["phase"][i]) if "phase" in info else 0

    def observe(self, obs: dict, i: int, scenes: tuple | None, probe: Probe | None) -> None:
        """Before acting: the observation the action is chosen from (and the sub-envs' scenes and the
        probe's output, when asked)."""
        if "images" in self.record:
            for cam, images in obs["images"].items():
                self.frames.setdefault(f"images/{cam}", []).append(images[i])
        if "state" in self.record:
            self.frames["state"].append(obs["state"][i])
        if "scene" in self.record:
            self.frames["scene"].append(scenes[i])
        if "probe" in self.record:
            self.frames["probe"].append(probe(i, self.length, False))

    def stepped(self, action: np.ndarray, reward: float, info: dict, i: int) -> None:
        self.length += 1
        phase = int(info["phase"][i]) if "phase" in self.record else 0
        for key, value in (
            ("action", action),
            ("reward", reward),
            ("success", bool(info["success"][i])),
            ("phase", max(self.phase, phase)),  # the label of a frame is the phase its action serves
        ):
            if key in self.record:
                self.frames[key].append(value)
        self.phase = phase

    def finish(self, obs: dict, info: dict, i: int, probe: Probe | None) -> Episode:
        frames = {key: _array(key, v) for key, v in self.frames.items()}
        if "action" in frames:
            frames["action"] = frames["action"].astype(np.float32)
        if "phase" in frames:
            frames["phase"] = frames["phase"].astype(np.int64)
        final = {cam: images[i] for cam, images in obs["images"].items()} if "images" in self.record else {}
        final_probe = probe(i, self.length, True) if "probe" in self.record else None
        seconds = time.perf_counter() - self.start
        success = bool(info["success"][i])
        return Episode(self.seed, success, self.length, self.instruction, seconds, frames, final, final_probe)


def _array(key: str, values: list) -> np.ndarray:
    if key in ("scene", "probe"):  # arbitrary objects (dataclasses): np.asarray would try to unpack them
        out = np.empty(len(values), dtype=object)
        for k, value in enumerate(values):  # one by one: a slice assignment would unpack tuples too
            out[k] = value
        return out
    return np.stack(values) if key.startswith("images/") else np.asarray(values)


def rollout(
    envs,
    seeds: Sequence[int],
    controller_for: ControllerFor | BatchController,
    record: tuple[str, ...] = (),
    record_seeds: Collection[int] | None = None,
    options: dict | None = None,
    execute_steps: int = 0,
    on_episode: Callable[[Episode], None] | None = None,
    before_reset: Callable[[int, int], None] | None = None,
    probe: Probe | None = None,
) -> list[Episode]:
    """Run one episode per seed on the sub-envs of `envs` (a gymnasium vector env, autoreset disabled);
    returns the episodes in the order of `seeds`. `controller_for` gives each episode its controller, or is
    one `BatchController` acting for every sub-env.

    `record` names what each step keeps (`RECORDABLE`; `Episode.frames` says the shapes), for the
    episodes in `record_seeds` (all when None). `options` go to every reset. `on_episode` sees each
    episode as it ends. `before_reset(sub-env index, seed)` runs before the reset that starts each
    episode (e.g. repainting objects of an in-process env); `probe(sub-env index, steps, ended)` is
    recorded as "probe" (e.g. facts read from the simulator beyond its `scene()`). A failing reset or step raises
    `SimulatorCrash` naming the seeds in flight.
    """
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"record: expected names from {list(RECORDABLE)}, received {sorted(unknown)}")
    if "probe" in record and probe is None:
        raise ValueError('record: "probe" needs a `probe` callable, received probe=None')
    n, dim = envs.num_envs, envs.single_action_space.shape[0]
    batched = controller_for if isinstance(controller_for, BatchController) else None
    todo = deque(enumerate(seeds))
    slots: list[_Slot | None] = [None] * n
    done_episodes: dict[int, Episode] = {}

    def start(i: int) -> int | None:
        """Put the next seed on sub-env `i` (None when there is none left)."""
        if not todo:
            slots[i] = None
            return None
        index, seed = todo.popleft()
        keep = record if record_seeds is None or seed in record_seeds else ()
        if before_reset is not None:
            before_reset(i, seed)
        if batched is not None:
            batched.begin(i, seed)
        slots[i] = _Slot(index, seed, None if batched else controller_for(i, seed), keep)  # type: ignore[operator]
        return seed

    def simulate(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except Exception as err:
            in_flight = [s.seed for s in slots if s is not None]
            raise SimulatorCrash(f"{type(err).__name__}: {err}", in_flight) from err

    wanted = np.ones(n, dtype=bool)  # the sub-envs' `images_wanted`: every env starts rendering (spec)

    def want(rows: Sequence[int]) -> None:
        """Set `images_wanted` for the next observation of sub-envs `rows` (on the envs only when it changes)."""
        new = wanted.copy()
        for i, flag in zip(rows, reads(rows), strict=True):
            new[i] = flag
        if (new != wanted).any():
            simulate(envs.set_attr, "images_wanted", new.tolist())
            wanted[:] = new

    def reads(rows: Sequence[int]) -> list[bool]:
        """Whether the next observation of each of sub-envs `rows` will be read (module docstring)."""
        asked = [i for i in rows if slots[i] is not None and not slots[i].queue]  # type: ignore[union-attr]
        if batched is not None and asked:
            observes = getattr(batched, "observes", None)
            asked = asked if observes is None else observes(asked)
        readers = set(asked)
        out = []
        for i in rows:
            slot = slots[i]
            recorded = slot is not None and "images" in slot.record
            read = i in readers and getattr(batched or slot.controller, "reads_images", True)  # type: ignore[union-attr]
            out.append(recorded or read)
        return out

    def view(obs: dict) -> dict:
        """The observation controllers see: images as `Frames` that raise on rows not rendered."""
        rendered = wanted.copy()
        return {**obs, "images": {cam: Frames(cam, v, rendered) for cam, v in obs["images"].items()}}

    first = [start(i) for i in range(n)]
    want(range(n))
    obs, info = simulate(envs.reset, seed=first, options=options)
    for i, slot in enumerate(slots):
        if slot is not None:
            slot.begin(obs, info, i)
    while any(s is not None for s in slots):
        actions = np.zeros((n, dim), dtype=np.float32)
        scenes = simulate(envs.call, "scene") if any(s is not None and "scene" in s.record for s in slots) else None
        need = [i for i, slot in enumerate(slots) if slot is not None and not slot.queue]
        seen = view(obs)
        if batched is not None and need:
            chunks = np.asarray(batched.act_batch(seen, need), dtype=np.float32)
            if len(chunks) != len(need):
                raise ValueError(f"act_batch: expected {len(need)} rows (one per slot), received {chunks.shape}")
            for i, chunk in zip(need, chunks, strict=True):
                slots[i].queue = as_chunk(chunk, dim, execute_steps)  # type: ignore[union-attr]
        for i, slot in enumerate(slots):
            if slot is None:
                continue  # idle sub-envs step with zeros: a vector env steps all of them
            slot.observe(obs, i, scenes, probe)
            if not slot.queue:
                slot.queue = as_chunk(slot.controller.act(unbatch(seen, i)), dim, execute_steps)
            actions[i] = slot.queue.popleft()
        want(range(n))
        obs, reward, terminated, truncated, info = simulate(envs.step, actions)
        finished = np.logical_or(terminated, truncated)  # gymnasium forbids stepping a finished sub-env, idle or not
        seeds_next: list[int | None] = [None] * n
        for i, slot in enumerate(slots):
            if slot is None:
                continue
            slot.stepped(actions[i], float(reward[i]), info, i)
            if finished[i]:
                episode = slot.finish(obs, info, i, probe)
                done_episodes[slot.index] = episode
                if on_episode is not None:
                    on_episode(episode)
                seeds_next[i] = start(i)
        if finished.any() and any(s is not None for s in slots):
            want(np.flatnonzero(finished).tolist())  # a sub-env left idle is reset too, without images
            obs, info = simulate(envs.reset, seed=seeds_next, options={**(options or {}), "reset_mask": finished})
            for i, slot in enumerate(slots):
                if slot is not None and seeds_next[i] is not None:
                    slot.begin(obs, info, i)
    return [done_episodes[i] for i in range(len(seeds))]
