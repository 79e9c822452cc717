"""Training data of the VLA trainer: LeRobot v3 episodes + VLM records in memory, and mixed batches.

Every frame t of a kept episode is a robot sample: its camera images, state, instruction (the LeRobot task),
optionally its subtask text as a target, and the action chunk a_t … a_{t+H−1} (past the episode's end the
last action repeats, LeRobot's clamped `delta_timestamps`). A VLM record is a text-only sample: its image
on the model's first camera (black on any other), no state, the question as prompt, the answer as target.

Batch s is a pure function of (seed, s): which samples, the flow noise ω and time τ of each row and the
random image shifts (`training.augment`, `--shift`), so a
resumed run and a run split across torchrun processes see exactly the same numbers as one uninterrupted
process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from reasonact.data import stats as stats_lib
from reasonact.data.lerobot import LeRobotReader
from reasonact.training.augment import shift_images, shift_offsets
from reasonact.vla.contract import Observation
from reasonact.vla.flow import sample_time
from reasonact.vla.transforms import VLATransforms, resize_images
from reasonact.vla.vqa_eval import VlmRecords, answer_text, load_records

IMAGE_PREFIX = "observation.images."


@dataclass
class Episode:
    images: dict[str, Tensor]  # source camera → (T, S, S, 3) uint8, already at the model's size
    state: np.ndarray  # (T, d_s) robot units
    action: np.ndarray  # (T, d_a) robot units
    task: str  # instruction
    subtask: np.ndarray  # (T,) str
    env_task: str  # simulator task name (held-out split per task)
    dataset: int  # index of its dataset in the config's `datasets`

    def chunk(self, t: int, horizon: int) -> np.ndarray:
        """Actions a_t … a_{t+H−1} (H, d_a) robot units, the last action repeated past the episode's end."""
        return self.action[np.minimum(np.arange(t, t + horizon), len(self.action) - 1)]


def heldout_frames(episodes: list[Episode], ids: list[int], n: int, seed: int) -> list[tuple[int, int]]:
    """Up to `n` (episode, frame) pairs of the episodes `ids`, drawn without replacement with `seed`."""
    frames = [(e, t) for e in ids for t in range(len(episodes[e].action))]
    if not frames:
        return []
    rng = np.random.default_rng(seed)
    return [frames[i] for i in rng.choice(len(frames), min(len(frames), n), replace=False)]


def open_loop_baselines(
    episodes: list[Episode], train: list[tuple[int, int]] | np.ndarray, picks: list[tuple[int, int]],
    truth: np.ndarray, horizon: int,
) -> dict[str, float]:  # fmt: skip
    """The mean-chunk and nearest-state baselines (`evaluation.baselines`), fitted per task on the training
    frames `train`, scored against `truth` (n, H, d_a) on the held-out frames `picks`."""
    from reasonact.evaluation.baselines import Demonstrations, open_loop_errors

    demos = Demonstrations.from_frames([episodes[e].env_task for e, _ in train],
                                       np.stack([episodes[e].state[t] for e, t in train]),
                                       np.stack([episodes[e].chunk(t, horizon) for e, t in train]))  # fmt: skip
    tasks = [episodes[e].env_task for e, _ in picks]
    states = np.stack([episodes[e].state[t] for e, t in picks])  # (n, d_s)
    return {**open_loop_errors(demos, tasks, states, truth), "heldout_frames": len(picks)}


@dataclass
class Batch:
    obs: Observation
    actions: Tensor  # (b, H, action_dim) normalised (zeros on text-only rows)
    action_mask: Tensor  # (b,) bool: the row carries actions
    noise: Tensor  # (b, H, action_dim) ω
    tau: Tensor  # (b,) flow time


def dataset_schema(reader: LeRobotReader) -> tuple[list[str], int, int]:
    """(camera names, state dim, action dim) of a dataset, with clear errors for missing features."""
    root = reader.root / "meta" / "info.json"
    for key in ("observation.state", "action"):
        if key not in reader.features:
            raise ValueError(f"{root}: dataset has no {key!r} feature; features {sorted(reader.features)}")
    cameras = [k[len(IMAGE_PREFIX) :] for k in reader.features if k.startswith(IMAGE_PREFIX)]
    if not cameras:
        raise ValueError(f"{root}: dataset has no camera ({IMAGE_PREFIX}<name> image feature)")
    shape = {k: int(np.prod(reader.features[k]["shape"])) for k in ("observation.state", "action")}
    for key, dim in shape.items():
        got = np.asarray(reader.stats.get(key, {}).get("mean", [])).size
        if got != dim:
            raise ValueError(f"{reader.root / 'meta' / 'stats.json'}: {key} has {got} dims, info.json says {dim}")
    return cameras, shape["observation.state"], shape["action"]


def load_episodes(roots: tuple[Path, ...], image_size: int) -> tuple[list[Episode], dict, list[str]]:
    """All episodes of the datasets (images resized once) → episodes, merged stats, camera names."""
    episodes, all_stats, schema = [], [], None
    for index, root in enumerate(roots):
        reader = LeRobotReader(root)
        found = dataset_schema(reader)
        if schema is not None and found != schema:
            raise ValueError(f"datasets: {root} has (cameras, state, action dims) {found}, {roots[0]} has {schema}")
        schema = found
        all_stats.append(reader.stats)
        for i in range(reader.num_episodes):
            frames = reader.episode(i)
            for key in ("observation.state", "action"):
                if not np.isfinite(frames[key]).all():
                    raise ValueError(f"{root}: episode {i} has non-finite values in {key!r}")
            subtask = frames.get("subtask", np.full(len(frames["action"]), "", dtype=object))
            episodes.append(
                Episode(
                    images={c: resize_images(frames[IMAGE_PREFIX + c], image_size, IMAGE_PREFIX + c) for c in found[0]},
                    state=frames["observation.state"].astype(np.float64).reshape(len(subtask), -1),
                    action=frames["action"].astype(np.float64).reshape(len(subtask), -1),
                    task=str(frames["task"]),
                    subtask=subtask,
                    env_task=str(reader.episodes[i].get("env_task", frames["task"])),
                    dataset=index,
                )
            )
    if schema is None:
        raise ValueError("datasets: expected at least one LeRobot dataset root, received none")
    return episodes, stats_lib.aggregate(all_stats), schema[0]


def load_vlm(paths: tuple[Path, ...], image_size: int) -> VlmRecords | None:
    """The "train" split of `reasonact data vlm` record files (`vqa_eval.load_records`), answers as trained
    (`answer_text`: the form `vqa_eval` decodes and scores)."""
    if not paths:
        return None
    train = load_records(paths, image_size).where(split="train")
    if not len(train):
        raise ValueError(f"vlm: no 'train' records in {[str(p) for p in paths]}")
    return dataclasses.replace(train, answers=[answer_text(a) for a in train.answers])


class MixedSampler:
    """Global batch s (pure function of (seed, s)) → this process's `Batch` (module docstring)."""

    def __init__(
        self,
        episodes: list[Episode],
        train: list[int],
        transforms: VLATransforms,
        vlm: VlmRecords | None,
        vlm_fraction: float,
        subtask_targets: bool,
        seed: int,
        weights: tuple[float, ...] = (),
        shift: int = 0,
    ) -> None:
        self.episodes, self.transforms, self.vlm, self.seed, self.shift = episodes, transforms, vlm, seed, shift
        self.vlm_fraction, self.subtask_targets = vlm_fraction if vlm is not None else 0.0, subtask_targets
        self.frames = np.array([(e, t) for e in train for t in range(len(episodes[e].action))])  # (n, 2)
        p = np.ones(len(self.frames))  # uniform over frames: datasets weighted by their size
        if weights:  # dataset k gets weights[k] / Σ weights of the robot rows, spread over its frames
            per_frame = np.array([episodes[e].dataset for e, _ in self.frames])
            counts = np.bincount(per_frame, minlength=len(weights))
            if len(weights) <= per_frame.max() or min(weights) < 0 or not sum(weights) > 0:
                raise ValueError(f"dataset_weights: expected one weight >= 0 per dataset, received {weights}")
            p = np.asarray(weights, dtype=np.float64)[per_frame] / counts[per_frame]
        self.p = p / p.sum()

    def chunk(self, episode: int, t: int) -> np.ndarray:
        """Actions a_t … a_{t+H−1} (H, d_a), the last action repeated past the episode's end."""
        return self.episodes[episode].chunk(t, self.transforms.config.horizon)

    def batch(self, step: int, size: int, rows: slice) -> Batch:
        cfg = self.transforms.config
        rng = np.random.default_rng([self.seed, step])
        n_vlm = round(size * self.vlm_fraction)
        picks = self.frames[rng.choice(len(self.frames), size - n_vlm, p=self.p)]  # (b_robot, 2)
        vlm_ids = rng.choice(len(self.vlm.questions), n_vlm) if n_vlm and self.vlm is not None else np.zeros(0, int)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        noise = torch.randn(size, cfg.horizon, cfg.action_dim, generator=g)
        tau = sample_time(size, cfg.time_beta, cfg.time_s, rng=rng)
        offsets = shift_offsets(rng, len(picks), self.shift)  # (2, b_robot), drawn for the global batch
        robot = [(int(e), int(t)) for e, t in picks[rows.start : rows.stop]]
        vlm_rows = vlm_ids[max(0, rows.start - len(picks)) : max(0, rows.stop - len(picks))]
        obs, actions, action_mask = self.assemble(robot, list(vlm_rows), offsets[:, rows.start : rows.stop])
        return Batch(obs, actions, action_mask, noise[rows], tau[rows])

    def assemble(
        self, robot: list[tuple[int, int]], vlm_rows: list[int], offsets: np.ndarray | None = None
    ) -> tuple[Observation, Tensor, Tensor]:
        """Robot (episode, frame) pairs, then VLM record indices → observation, actions (b, H, action_dim)
        normalised, action mask (b,). `offsets` (2, b_robot): the robot images' random shifts by up to
        `self.shift` pixels (`training.augment`; every camera of a sample moves alike); None = unshifted."""
        tf, cfg = self.transforms, self.transforms.config
        cameras = [tf.source_camera(c) for c in cfg.cameras]
        images = {c: [self.episodes[e].images[c][t] for e, t in robot] for c in cameras}
        if self.shift and offsets is not None and robot:
            images = {c: list(shift_images(torch.stack(v), self.shift, offsets)) for c, v in images.items()}
        prompts = [self.episodes[e].task for e, _ in robot]
        targets: list[str | None] = [
            str(self.episodes[e].subtask[t]) if self.subtask_targets else None for e, t in robot
        ]
        state = [self.episodes[e].state[t] for e, t in robot]
        chunks = [self.chunk(e, t) for e, t in robot]
        if len(vlm_rows):
            assert self.vlm is not None
            blank = torch.zeros_like(self.vlm.images[0])
            for i, c in enumerate(cameras):
                images[c] += [self.vlm.images[j] if i == 0 else blank for j in vlm_rows]
            prompts += [self.vlm.questions[j] for j in vlm_rows]
            targets += [self.vlm.answers[j] for j in vlm_rows]
            state += [np.zeros(tf.state.dim)] * len(vlm_rows)
            chunks += [np.zeros((cfg.horizon, tf.action.dim))] * len(vlm_rows)
        has = [True] * len(robot) + [False] * len(vlm_rows)
        obs = tf.observation(
            {c: torch.stack(v) for c, v in images.items()}, np.stack(state), prompts, targets, has_state=has
        )
        mask = torch.tensor(has)
        actions = tf.actions_to_model(np.stack(chunks))
        actions[~mask] = 0.0  # text-only rows: no actions (ignored by the loss, zero for clarity)
        return obs, actions, mask
