"""Does a VLA follow its instruction? Same scene, different instruction → different behaviour (the KI paper's
language-following claim: joint training (π0) degrades it, knowledge insulation keeps it; issue 17).

MetaWorld's MT10 tasks mostly have scenes of their own, but three groups share one (`SCENE_GROUPS`): reach, push
and pick-place (the same table, puck and goal), drawer open / close, window open / close. Their scripted
experts read the same 39-dim state, so in a scene of task A the expert of a partner task B says what following
B's instruction would do there. Two measures, both on held-out scenes (evaluation seeds, never collected):

Open loop (always):

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

Closed loop (`--closed-loop`): in task B's environment, K' episodes told B's instruction and the same seeds told
a partner A's (`EnvConfig.instruction_task`; the evaluation harness runs both, the policy's flow noise seeded
per episode, so the instruction is the only difference):

    following   = success(B | told B) − success(B | told A)   over pairs and paired episodes: 1 = does B only
                when told B, 0 = the same whatever it is told (exactly 0 for a text-blind policy)

The first action is the one a policy executes in that state; the expert gives no chunk without simulating it.
Tasks outside the groups have no same-scene partner and are listed under `skipped`. The report keeps each
frame's ⟨Δ_model, Δ_expert⟩ and ‖Δ_expert‖² (`frame_dot`, `frame_scale`) and its scene (`frame_episode`:
"task@seed"), and each closed-loop episode pair, so runs can be pooled; both 95 % intervals are percentile
bootstraps that resample whole scenes (`stats.bootstrap_interval` clustered by "task@seed": the frames of one
episode, and the closed-loop pairs in one scene, are correlated).
`reasonact vla follow <checkpoint>` is the CLI; the KI study measures every run's last checkpoint with it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro

from reasonact.atomic import atomic_write_json
from reasonact.checks import check_range
from reasonact.devices import placement
from reasonact.envs import BatchController, Controller, EnvConfig, make_env, make_expert
from reasonact.envs.tasks import metaworld_language
from reasonact.evaluation import ControllerFactory, EvalConfig, evaluate
from reasonact.stats import bootstrap_interval
from reasonact.threads import torch_threads
from reasonact.vla.evaluate import check_compatible, select_tasks

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
    seeds: np.ndarray  # (n,) int: the seed of each frame's episode (its scene)

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
    picked_seeds: list[int] = []
    try:
        for seed in seeds:
            env.images_wanted = True  # render only the picked observations (`envs.spec.OnDemandImages`)
            obs, _ = env.reset(seed=int(seed))
            expert.reset()
            t, done = 0, False
            while not done:  # until success or the time limit
                if t % every == 0:
                    picked.append(obs)
                    picked_seeds.append(int(seed))
                env.images_wanted = (t + 1) % every == 0
                obs, _, terminated, truncated, _ = env.step(expert.act(obs))
                t, done = t + 1, terminated or truncated
    finally:
        env.close()
    return SceneFrames(
        task,
        {c: np.stack([o["images"][c] for o in picked]) for c in picked[0]["images"]},
        np.stack([o["state"] for o in picked]),
        np.stack([o["privileged"] for o in picked]),
        np.asarray(picked_seeds),
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


def measure(chunks: Chunks, frames: Sequence[SceneFrames]) -> dict:
    """Each task's frames with its own instruction and with each partner's → `scores` pooled and per pair."""
    deltas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scenes: list[str] = []  # "task@seed" of every frame of every pair, in the order of `deltas`
    for scene in frames:
        if not partners(scene.task):
            raise ValueError(f"frames: {scene.task} has no same-scene partner (SCENE_GROUPS)")
        own = chunks(scene, instruction(scene.task))[:, 0]  # (n, d_a)
        own_expert = expert_actions(scene.task, scene)
        for other in partners(scene.task):
            d_model = chunks(scene, instruction(other))[:, 0] - own
            deltas[f"{scene.task}→{other}"] = (d_model, expert_actions(other, scene) - own_expert)
            scenes += [f"{scene.task}@{seed}" for seed in scene.seeds]
    if not deltas:
        raise ValueError("frames: expected the frames of at least one task, received none")
    d_model, d_expert = (np.concatenate(parts) for parts in zip(*deltas.values(), strict=True))  # (N, d_a) each
    frame_dot, frame_scale = (d_model * d_expert).sum(axis=1), (d_expert**2).sum(axis=1)
    ci = bootstrap_interval(frame_dot, frame_scale, clusters=scenes)
    return {
        **scores(d_model, d_expert),
        "following_ci": list(ci) if ci else None,
        "pairs": {name: scores(*d) for name, d in deltas.items()},
        "frame_dot": frame_dot.tolist(),
        "frame_scale": frame_scale.tolist(),
        "frame_episode": scenes,
    }


def closed_loop(
    controller: Controller | BatchController | ControllerFactory,
    tasks: Sequence[str],
    episodes: int,
    base: EvalConfig,
) -> dict:
    """Each task B of `tasks` closed loop in its own environment, told B's instruction and (same seeds) each
    partner A's → success of B both ways and `following` = their paired difference (module docstring).

    `base` holds the harness settings (seed, env: cameras, size, limit, sub-envs); its tasks, episodes, policy
    and instruction are set here, and each evaluation writes its results under `base.out`/<B>__told__<A>."""
    paired: list[dict] = []  # one per (pair, seed): B's outcome told B and told A

    def successes(task: str, told: str) -> list[bool]:  # by episode, seed base.seed + k
        env = dataclasses.replace(base.env, instruction_task=told)
        config = dataclasses.replace(base, tasks=(task,), episodes=episodes, env=env, videos_per_task=0,
                                     out=base.out / f"{task}__told__{told}")  # fmt: skip
        return [e["success"] for e in evaluate(config, controller, show_progress=False)["episodes"]]

    for task in tasks:
        if not partners(task):
            raise ValueError(f"tasks: {task} has no same-scene partner (SCENE_GROUPS)")
        own = successes(task, task)
        for other in partners(task):
            for k, (told_own, told_other) in enumerate(zip(own, successes(task, other), strict=True)):
                paired.append({"pair": f"{task}→{other}", "scene": f"{task}@{base.seed + k}",
                               "told_own": told_own, "told_other": told_other})  # fmt: skip
    pairs = dict.fromkeys(p["pair"] for p in paired)
    return {
        **closed_loop_scores(paired),
        "pairs": {name: closed_loop_scores([p for p in paired if p["pair"] == name]) for name in pairs},
        "episodes": episodes,
        "paired": paired,
    }


def closed_loop_scores(paired: Sequence[dict]) -> dict:
    """Paired closed-loop outcomes (`closed_loop`'s "paired", from one or several runs) → success told own and
    other, `following` (their mean difference) and its 95 % interval resampling scenes (a scene's pairs and
    runs together)."""
    if not paired:
        raise ValueError("paired: expected closed-loop episode pairs, received none")
    own, other = (np.asarray([p[k] for p in paired], dtype=np.float64) for k in ("told_own", "told_other"))  # (n,)
    ci = bootstrap_interval(own - other, clusters=[p["scene"] for p in paired])
    return {"following": float((own - other).mean()), "following_ci": list(ci) if ci else None,
            "success_told_own": float(own.mean()), "success_told_other": float(other.mean()),
            "paired_episodes": len(paired)}  # fmt: skip


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
    closed_loop: bool = False  # also closed loop: success on each task told its own vs a partner's instruction
    closed_loop_episodes: int = 5  # K': closed-loop episodes per (task, instruction), seeds seed … seed + K' − 1
    closed_loop_max_steps: int = 0  # closed-loop episode limit (0 = the task's default: 300 for MetaWorld)
    num_envs: int = 2  # closed loop: vectorised sub-envs per task, batched through one forward pass
    asynchronous: bool = True  # closed loop: one process per sub-env
    ema: bool = True  # the checkpoint's EMA weights when it has them
    device: str = "cpu"  # where the policy's model runs (cpu, cuda, cuda:N, mps)
    threads: int = 1  # torch intra-op threads of the policy (as `vla eval --threads`)
    out: Path = Path("runs/vla_eval/language_following.json")  # the JSON report


def follow(config: FollowConfig) -> dict:
    """Measure a checkpoint's language following on same-scene MetaWorld tasks; print and write the report."""
    from reasonact.vla.policy import load_checkpoint

    where = placement(config.device, "float32")
    check_range(config.closed_loop_episodes, "closed_loop_episodes", low=1)
    check_range(config.threads, "threads", low=1)
    tasks = select_tasks(config.suite, config.tasks)
    measured = [t for t in tasks if partners(t)]
    if not measured:
        raise ValueError(f"tasks: none of {tasks} has a same-scene partner; groups: {list(SCENE_GROUPS)}")
    policy = load_checkpoint(config.checkpoint, config.ema)
    check_compatible(policy.spec, measured)
    policy.model.to(where.device)
    seeds = range(config.seed, config.seed + config.episodes)
    spec = policy.spec
    frames = [scene_frames(t, seeds, config.every, config.max_steps, spec.image_size, spec.cameras) for t in measured]
    with torch_threads(config.threads):
        open_loop = measure(policy_chunks(policy, config.seed), frames)
        closed = closed_loop_of(config, policy, measured) if config.closed_loop else None
    report = {
        **open_loop,
        "closed_loop": closed,
        "checkpoint": policy.metadata["checkpoint"],
        "step": policy.metadata["step"],
        "variant": policy.metadata["variant"],
        "tasks": measured,
        "skipped": [t for t in tasks if t not in measured],
        "seeds": list(seeds),
        "every": config.every,
    }
    atomic_write_json(config.out, report)
    shown = {k: v for k, v in report.items() if not k.startswith("frame_")}  # per frame and episode: `out`
    if report["closed_loop"]:
        shown["closed_loop"] = {k: v for k, v in report["closed_loop"].items() if k != "paired"}
    print(json.dumps(shown, indent=2))
    print(f"→ {config.out}")
    return report


def closed_loop_of(config: FollowConfig, policy, tasks: list[str]) -> dict:
    """`closed_loop` for a checkpoint policy with the follow command's settings (results under `out` without
    its suffix)."""
    env = EnvConfig(image_size=policy.spec.image_size, cameras=policy.spec.cameras,
                    max_steps=config.closed_loop_max_steps)  # fmt: skip
    base = EvalConfig(env=env, num_envs=config.num_envs, asynchronous=config.asynchronous, seed=config.seed,
                      out=config.out.with_suffix("") / "closed_loop")  # fmt: skip
    return {**closed_loop(policy, tasks, config.closed_loop_episodes, base), "max_steps": config.closed_loop_max_steps}


__all__ = [
    "SCENE_GROUPS",
    "FollowConfig",
    "SceneFrames",
    "closed_loop",
    "closed_loop_scores",
    "follow",
    "measure",
    "partners",
    "scene_frames",
    "scores",
]
