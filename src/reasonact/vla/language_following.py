"""Does a VLA follow its instruction? Same scene, different instruction → different behaviour (the KI paper's
language-following claim: joint training (π0) degrades it, knowledge insulation keeps it; issue 17).

MetaWorld's MT10 tasks mostly have scenes of their own, but three groups share one (`SCENE_GROUPS`): reach, push
and pick-place (the same table, puck and goal), drawer open / close, window open / close. Their scripted
experts read the same 39-dim state, so in a scene of task A the expert of a partner task B says what following
B's instruction would do there. The measure, open loop on held-out scenes (evaluation seeds, never collected):

    frames      every `every`-th step of task A's scripted episode from seeds s … s + K − 1 (its own scene,
                on the states the policy meets when it does A)
    Δ_model     = â(l_B)_0 − â(l_A)_0   the first action of the chunk predicted with B's instruction minus the one
                predicted with A's (robot units; the same flow noise for both, so text alone makes the change)
    Δ_expert    = π_B(s) − π_A(s)       the two scripted experts' actions in that state
    following   = Σ ⟨Δ_model, Δ_expert⟩ / Σ ‖Δ_expert‖²   (sums over frames and partners) — the share of the
                experts' instruction-induced change the policy reproduces, in its direction: 1 = switches as
                the experts do, 0 = ignores the text (exactly 0 for a text-blind policy), < 0 = the wrong way
    sensitivity = Σ ‖Δ_model‖ / Σ ‖Δ_expert‖   how much the action moves at all when the instruction changes
                (text-sensitive noise raises it without raising `following`)

The first action is the one a policy executes in that state; the expert gives no chunk without simulating it.
Tasks outside the groups have no same-scene partner and are listed under `skipped`. The report keeps each
frame's ⟨Δ_model, Δ_expert⟩ and ‖Δ_expert‖² (`frame_dot`, `frame_scale`), so runs can be pooled and
`following_interval` can bootstrap a 95 % interval over frames (optimistic: frames of one episode correlate).
`reasonact vla follow <checkpoint>` is the CLI; the KI study measures every run's last checkpoint with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro

from reasonact.atomic import atomic_write_json
from reasonact.devices import placement
from reasonact.envs import EnvConfig, make_env, make_expert
from reasonact.envs.tasks import metaworld_language
from reasonact.vla.evaluate import select_tasks

CHECKPOINT_HELP = "a `reasonact vla train` run directory (its latest checkpoint) or one of its checkpoints/step_<n>"
# MetaWorld tasks built on one scene (same model file, objects and state layout), so each one's instruction can
# be given in the others' scenes and each one's expert can act there.
SCENE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("reach-v3", "push-v3", "pick-place-v3"),
    ("drawer-open-v3", "drawer-close-v3"),
    ("window-open-v3", "window-close-v3"),
)


def partners(task: str) -> list[str]:
    """The other tasks of `task`'s scene group ([] when it has none)."""
    return [t for group in SCENE_GROUPS if task in group for t in group if t != task]


def instruction(task: str) -> str:
    """The canonical (training) instruction of a MetaWorld task."""
    return metaworld_language(task).instruction


@dataclass
class SceneFrames:
    """States of one task's own scenes, as the policy sees them and as the experts read them."""

    task: str
    images: dict[str, np.ndarray]  # camera → (n, S, S, 3) uint8
    state: np.ndarray  # (n, d_s) policy-visible state
    privileged: np.ndarray  # (n, 39) MetaWorld state (what the scripted experts read)

    def __len__(self) -> int:
        return len(self.state)


def scene_frames(
    task: str, seeds: Sequence[int], every: int, max_steps: int, image_size: int, cameras: tuple[str, ...]
) -> SceneFrames:
    """Every `every`-th observation of `task`'s scripted expert episode from each seed (module docstring)."""
    if every < 1:
        raise ValueError(f"every: expected a frame stride >= 1, received {every}")
    env = make_env(EnvConfig(task=task, image_size=image_size, cameras=cameras, max_steps=max_steps, privileged=True))
    expert = make_expert(task)
    picked: list[dict] = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            expert.reset()
            t, done = 0, False
            while not done:  # until success or the time limit
                if t % every == 0:
                    picked.append(obs)
                obs, _, terminated, truncated, _ = env.step(expert.act(obs))
                t, done = t + 1, terminated or truncated
    finally:
        env.close()
    return SceneFrames(
        task,
        {c: np.stack([o["images"][c] for o in picked]) for c in picked[0]["images"]},
        np.stack([o["state"] for o in picked]),
        np.stack([o["privileged"] for o in picked]),
    )


def expert_actions(task: str, frames: SceneFrames) -> np.ndarray:
    """The scripted expert of `task` in each frame's state → (n, d_a)."""
    expert = make_expert(task)
    return np.stack([expert.act({"privileged": p}) for p in frames.privileged])  # type: ignore[typeddict-item]


# frames, instruction → chunks (n, H, d_a) robot units; the same frames must get the same flow noise every call
Chunks = Callable[[SceneFrames, str], np.ndarray]


def policy_chunks(policy, seed: int = 0, batch: int = 32) -> Chunks:
    """A `vla.policy.CheckpointPolicy` as `Chunks`: flow noise from `seed` per call (so two instructions on
    the same frames differ by their text only), `batch` frames per forward pass."""
    cfg = policy.transforms.config

    def chunks(frames: SceneFrames, text: str) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(frames), cfg.horizon, cfg.action_dim, generator=g)  # (n, H, action_dim)
        out = []
        for i in range(0, len(frames), batch):
            rows = slice(i, i + batch)
            images = {c: x[rows] for c, x in frames.images.items()}
            state = frames.state[rows]
            out.append(policy.predict(images, state, [text] * len(state), noise[rows]))
        return np.concatenate(out)

    return chunks


def scores(d_model: np.ndarray, d_expert: np.ndarray) -> dict[str, float | int | None]:
    """Δ_model, Δ_expert (n, d_a) → `following` and `sensitivity` (module docstring; None when the experts
    never differ)."""
    if d_model.shape != d_expert.shape:
        raise ValueError(f"d_model: expected the shape of d_expert {d_expert.shape}, received {d_model.shape}")
    scale = float((d_expert**2).sum())
    following = float((d_model * d_expert).sum()) / scale if scale > 0 else None
    spread = float(np.linalg.norm(d_expert, axis=1).sum())
    sensitivity = float(np.linalg.norm(d_model, axis=1).sum()) / spread if spread > 0 else None
    return {"following": following, "sensitivity": sensitivity, "frames": len(d_model)}


def following_interval(
    frame_dot: Sequence[float], frame_scale: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of `following` = Σ dot / Σ scale over frames resampled with replacement
    (None without frames or when the experts never differ)."""
    dot, scale = np.asarray(frame_dot, dtype=np.float64), np.asarray(frame_scale, dtype=np.float64)
    if dot.shape != scale.shape or dot.ndim != 1:
        raise ValueError(f"frame_dot: expected the shape of frame_scale {scale.shape}, received {dot.shape}")
    if not len(dot) or scale.sum() <= 0:
        return None
    picks = np.random.default_rng(seed).integers(0, len(dot), (resamples, len(dot)))  # (resamples, n)
    sums = scale[picks].sum(axis=1)
    ratios = dot[picks].sum(axis=1)[sums > 0] / sums[sums > 0]
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def measure(chunks: Chunks, frames: Sequence[SceneFrames]) -> dict:
    """Each task's frames with its own instruction and with each partner's → `scores` pooled and per pair."""
    deltas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for scene in frames:
        if not partners(scene.task):
            raise ValueError(f"frames: {scene.task} has no same-scene partner (SCENE_GROUPS)")
        own = chunks(scene, instruction(scene.task))[:, 0]  # (n, d_a)
        own_expert = expert_actions(scene.task, scene)
        for other in partners(scene.task):
            d_model = chunks(scene, instruction(other))[:, 0] - own
            deltas[f"{scene.task}→{other}"] = (d_model, expert_actions(other, scene) - own_expert)
    if not deltas:
        raise ValueError("frames: expected the frames of at least one task, received none")
    d_model, d_expert = (np.concatenate(parts) for parts in zip(*deltas.values(), strict=True))  # (N, d_a) each
    frame_dot, frame_scale = (d_model * d_expert).sum(axis=1), (d_expert**2).sum(axis=1)
    return {
        **scores(d_model, d_expert),
        "following_ci": list(ci) if (ci := following_interval(frame_dot, frame_scale)) else None,
        "pairs": {name: scores(*d) for name, d in deltas.items()},
        "frame_dot": frame_dot.tolist(),
        "frame_scale": frame_scale.tolist(),
    }


@dataclass(frozen=True)
class FollowConfig:
    """`reasonact vla follow <checkpoint>`: same scene, different instruction (module docstring)."""

    checkpoint: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="CHECKPOINT", help=CHECKPOINT_HELP)] = Path(
        "runs/vla/tiny"
    )
    suite: str = "mt10"  # suite (or task) whose same-scene tasks are measured
    tasks: tuple[str, ...] = ()  # a subset of the suite's tasks (() = all); tasks without a partner are skipped
    episodes: int = 2  # K: scenes per task, seeds seed … seed + K − 1
    seed: int = 10_000  # first scene seed (evaluation seeds: `reasonact data collect` stays below 10,000)
    every: int = 10  # frame stride along the expert's episode
    max_steps: int = 150  # expert episode limit per scene
    ema: bool = True  # the checkpoint's EMA weights when it has them
    device: str = "cpu"  # where the policy's model runs (cpu, cuda, cuda:N, mps)
    out: Path = Path("runs/vla_eval/language_following.json")  # the JSON report


def follow(config: FollowConfig) -> dict:
    """Measure a checkpoint's language following on same-scene MetaWorld tasks; print and write the report."""
    from reasonact.vla.policy import load_checkpoint

    where = placement(config.device, "float32")
    tasks = select_tasks(config.suite, config.tasks)
    measured = [t for t in tasks if partners(t)]
    if not measured:
        raise ValueError(f"tasks: none of {tasks} has a same-scene partner; groups: {list(SCENE_GROUPS)}")
    policy = load_checkpoint(config.checkpoint, config.ema)
    policy.model.to(where.device)
    seeds = range(config.seed, config.seed + config.episodes)
    spec = policy.spec
    frames = [scene_frames(t, seeds, config.every, config.max_steps, spec.image_size, spec.cameras) for t in measured]
    report = {
        **measure(policy_chunks(policy, config.seed), frames),
        "checkpoint": policy.metadata["checkpoint"],
        "step": policy.metadata["step"],
        "variant": policy.metadata["variant"],
        "tasks": measured,
        "skipped": [t for t in tasks if t not in measured],
        "seeds": list(seeds),
        "every": config.every,
    }
    atomic_write_json(config.out, report)
    print(json.dumps({k: v for k, v in report.items() if not k.startswith("frame_")}, indent=2))  # per frame: `out`
    print(f"→ {config.out}")
    return report


__all__ = [
    "SCENE_GROUPS",
    "FollowConfig",
    "SceneFrames",
    "follow",
    "following_interval",
    "measure",
    "partners",
    "scene_frames",
    "scores",
]
