"""`reasonact eval`: K fixed-seed episodes per task on vectorised envs → success rates with 95 % CIs.

Episodes of one task run through `reasonact.envs.rollout` on `num_envs` sub-envs (one process each
when asynchronous, so both cores work), each with its own controller; a finished sub-env is reset
with the next episode's seed, so the k-th episode of a task always has seed `config.seed + k` and
the same result whatever the number of envs. A simulator that raises or whose worker process dies
ends the episodes in flight: each is re-run (same seed) `CRASH_RETRIES` times on fresh envs, then
recorded as failed ("crashed"), and the run goes on. Writes `results.json` (per task, overall, one
record per episode), `summary.png` (success per task with Wilson intervals) and rollout videos (mp4 at the
control rate, and GIFs for reports).

LIBERO follows the benchmark's protocol: seed s selects its fixed initial state s % 50, so the
default seeds 10,000 … 10,049 visit each of the 50 states once; results then carry a `suites`
table in the papers' form (Spatial / Object / Goal / Long / Average): any simulator's `paper_table`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_json, ensure_writable_dir
from reasonact.checks import check_range
from reasonact.envs import (
    SIMULATORS,
    BatchController,
    Controller,
    EnvConfig,
    Episode,
    SimulatorCrash,
    expand_tasks,
    make_vector_env,
    rollout,
    simulator_of,
)
from reasonact.evaluation.controllers import ControllerFactory, resolve_controller
from reasonact.stats import wilson_interval

CRASH_RETRIES = 1  # re-runs of an episode whose simulator crashed before it is recorded as failed
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    tasks: tuple[str, ...] = ("mt10",)  # task names or suites ("mt10", "mt50", "pusht", "libero_spatial", …)
    episodes: int = 10  # K: episodes per task, seeds seed .. seed + K - 1
    policy: str = "expert"  # what acts: "expert", "random" or "package.module:factory" (task → Controller)
    env: EnvConfig = field(default_factory=lambda: EnvConfig(image_size=96))  # task is set per task
    num_envs: int = 2  # vectorised sub-envs per task (2 = both cores here)
    asynchronous: bool = True  # one process per sub-env
    execute_steps: int = 0  # actions of each predicted chunk executed before re-planning (0 = all)
    videos_per_task: int = 1  # rollouts saved per task (first-camera frames; mp4 at the control rate + GIF)
    seed: int = 10_000  # evaluation seeds start here (collection uses different ones)
    out: Path = Path("runs/eval/mt10")  # results.json, summary.png, videos/


PRESETS: dict[str, tuple[str, EvalConfig]] = {
    "tiny": (
        "Seconds: expert on 2 tasks × 2 episodes, 32 px, in-process.",
        EvalConfig(
            tasks=("reach-v3", "drawer-close-v3"),
            episodes=2,
            env=EnvConfig(image_size=32, max_steps=120),
            num_envs=1,
            asynchronous=False,
            out=Path("runs/eval/tiny"),
        ),
    ),
    "mt10": ("MT10, 10 episodes per task, 96 px, 2 processes.", EvalConfig()),
    "libero": (
        "The papers' LIBERO protocol: 4 suites × 10 tasks × 50 fixed initial states, 2 cameras at 128 px.",
        EvalConfig(
            tasks=("libero_spatial", "libero_object", "libero_goal", "libero_10"),
            episodes=50,
            env=EnvConfig(image_size=128),
            videos_per_task=1,
            out=Path("runs/eval/libero"),
        ),
    ),
    "libero-tiny": (
        "A few minutes: expert on one Spatial and one Object task × 2 initial states, 32 px, in-process.",
        EvalConfig(
            tasks=(
                "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
                "libero_object/pick_up_the_alphabet_soup_and_place_it_in_the_basket",
            ),
            episodes=2,
            env=EnvConfig(image_size=32),
            num_envs=1,
            asynchronous=False,
            out=Path("runs/eval/libero_tiny"),
        ),
    ),
}


def _close(envs, crashed: bool) -> None:
    try:
        envs.close(terminate=True) if crashed and hasattr(envs, "parent_pipes") else envs.close()
    except Exception as err:  # a crashed worker may not close cleanly; the envs are dropped either way
        log.warning("closing crashed envs failed: %r", err)


def controllers_per_env(
    controller: Controller | BatchController | ControllerFactory, task: str, n: int
) -> list[Controller] | BatchController:
    """One controller per sub-env: `n` calls of a factory, or an instance for the first sub-env and
    deep copies of it for the others (pass a factory to share weights instead of copying them);
    a `BatchController` acts for all of them (it gets the batched observation)."""
    if isinstance(controller, BatchController) and not isinstance(controller, type):
        return controller
    if isinstance(controller, Controller) and not isinstance(controller, type):  # a class is a factory
        return [controller] + [copy.deepcopy(controller) for _ in range(n - 1)]
    return [controller(task) for _ in range(n)]


def run_task(
    task: str, controllers: list[Controller] | BatchController, config: EvalConfig, done_one=lambda: None
) -> dict:
    """K episodes of one task → {successes, lengths, crashed, videos: {episode: frames}} (lists by episode)."""
    batched = controllers if isinstance(controllers, BatchController) else None
    privileged = getattr(batched or controllers[0], "privileged", False)  # type: ignore[index]
    env_config = dataclasses.replace(config.env, task=task, privileged=privileged)
    k = config.episodes
    result: dict = {"successes": [False] * k, "lengths": [0] * k, "crashed": [False] * k, "videos": {}}
    videos = {config.seed + e for e in range(min(config.videos_per_task, k))}
    crashes: dict[int, int] = {}
    ended: set[int] = set()  # seeds whose episode ended (finished, or crashed once too often)

    def finished(episode: Episode) -> None:
        e = episode.seed - config.seed
        ended.add(episode.seed)
        result["successes"][e], result["lengths"][e] = episode.success, episode.length
        images = {key.split("/", 1)[1]: v for key, v in episode.frames.items() if key.startswith("images/")}
        if images:  # the first camera, every frame the controller saw, then the last one
            camera = next(iter(images))
            result["videos"][e] = [*images[camera], episode.final_images[camera]]
        done_one()

    todo = [config.seed + e for e in range(k)]
    while todo:
        envs = make_vector_env([env_config] * min(config.num_envs, len(todo)), asynchronous=config.asynchronous)
        try:
            rollout(
                envs,
                todo,
                batched or (lambda slot, seed: controllers[slot]),  # type: ignore[index]
                record=("images",),
                record_seeds=videos,
                execute_steps=config.execute_steps,
                on_episode=finished,
            )
            _close(envs, crashed=False)
            todo = []
        except SimulatorCrash as err:
            _close(envs, crashed=True)
            retry = []
            for seed in err.seeds:
                crashes[seed] = crashes.get(seed, 0) + 1
                log.warning(
                    "%s episode %d (seed %d) crashed (%d×): %s", task, seed - config.seed, seed, crashes[seed], err
                )
                if crashes[seed] <= CRASH_RETRIES:
                    retry.append(seed)
                else:
                    result["crashed"][seed - config.seed] = True
                    ended.add(seed)
                    done_one()
            todo = retry + [s for s in todo if s not in ended and s not in retry]
    return result


def summarise(task: str, result: dict) -> dict:
    s, lengths = result["successes"], np.asarray(result["lengths"])
    low, high = wilson_interval(sum(s), len(s))
    ok = lengths[np.asarray(s, dtype=bool)]
    return {
        "episodes": len(s),
        "successes": int(sum(s)),
        "success_rate": sum(s) / len(s),
        "ci95": [low, high],
        "mean_length": float(lengths.mean()),
        "mean_length_success": float(ok.mean()) if len(ok) else None,
        "crashed": int(sum(result.get("crashed", []))),
        "simulator": simulator_of(task).name,
    }


def episode_records(task: str, result: dict, seed: int) -> list[dict]:
    """The per-episode rows of one task's results, episode k with seed `seed + k`."""
    rows = zip(result["successes"], result["lengths"], result["crashed"], strict=True)
    return [
        {"task": task, "seed": seed + k, "success": success, "length": length, "crashed": crashed}
        for k, (success, length, crashed) in enumerate(rows)
    ]


def task_labels(tasks: list[str], width: int = 44) -> dict[str, str]:
    """Short, distinct labels for plots: "reach-v3" → "reach"; "suite/long_name" keeps its suite and the words
    that tell it from the suite's other tasks (common leading and trailing words dropped), elided to `width`."""
    groups: dict[str, list[list[str]]] = {}
    for task in tasks:
        if "/" in task:
            suite, name = task.split("/", 1)
            groups.setdefault(suite, []).append(name.split("_"))

    def common(lists: list[list[str]]) -> int:
        return next(
            (i for i, words in enumerate(zip(*lists, strict=False)) if len(set(words)) > 1), min(map(len, lists))
        )

    labels: dict[str, str] = {}
    for task in tasks:
        if "/" not in task:
            labels[task] = task.removesuffix("-v3")
            continue
        suite, name = task.split("/", 1)
        words, group = name.split("_"), groups[suite]
        if len(group) > 1:
            head, tail = common(group), common([w[::-1] for w in group])
            words = words[head : len(words) - tail] or words
        text = f"{suite}/{'_'.join(words)}"
        labels[task] = text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width - width // 2) :]
    counts = Counter(labels.values())
    seen: Counter = Counter()
    for task, label in labels.items():  # still equal (elided alike): number them
        seen[label] += 1
        if counts[label] > 1:
            labels[task] = f"{label} #{seen[label]}"
    return labels


def evaluate(
    config: EvalConfig,
    controller: Controller | BatchController | ControllerFactory | None = None,
    show_progress: bool = True,
) -> dict:
    """Run the evaluation; `controller` (an instance, a `BatchController`, or a task → controller factory)
    overrides `config.policy`."""
    from rich.progress import Progress

    check_range(config.episodes, "episodes", low=1)
    check_range(config.num_envs, "num_envs", low=1)
    tasks = expand_tasks(config.tasks)
    factory = controller if controller is not None else resolve_controller(config.policy, config.seed)
    results: dict = {
        "config": {
            "policy": config.policy if controller is None else type(controller).__name__,
            "episodes": config.episodes,
            "seed": config.seed,
            "tasks": tasks,
        },
        "tasks": {},
        "episodes": [],  # one record per episode (task, seed, success, length, crashed): paired comparisons
    }
    ensure_writable_dir(config.out / "videos", "out")  # before any rollout
    with Progress(disable=not show_progress) as bar:
        job = bar.add_task("evaluating", total=len(tasks) * config.episodes)
        for task in tasks:
            controllers = controllers_per_env(factory, task, config.num_envs)
            result = run_task(task, controllers, config, lambda: bar.advance(job))
            results["tasks"][task] = summarise(task, result)
            results["episodes"] += episode_records(task, result, config.seed)
            for k, frames in result["videos"].items():  # LIBERO tasks are "suite/task"
                _write_video(config.out / "videos" / f"{task.replace('/', '__')}_ep{k}", frames, simulator_of(task).fps)
    rates = [r["success_rate"] for r in results["tasks"].values()]
    total = sum(r["successes"] for r in results["tasks"].values())
    episodes = sum(r["episodes"] for r in results["tasks"].values())
    results["overall"] = {
        "success_rate": float(np.mean(rates)),
        "ci95": list(wilson_interval(total, episodes)),
        "episodes": episodes,
    }
    tables = paper_tables(results["tasks"])
    if tables:
        results["suites"] = tables
    atomic_write_json(config.out / "results.json", results)
    plot_summary(results, config.out / "summary.png")
    return results


def _write_video(stem: Path, frames: list[np.ndarray], fps: int) -> None:
    """One rollout (every observed frame, the final one included) as `stem.mp4` at the control rate and
    `stem.gif` (20 frames/s: browsers slow faster GIFs down) for reports; mp4's 4:2:0 chroma needs even sizes."""
    import imageio.v3 as iio

    from reasonact.data.video import encode

    video = np.stack(frames)  # (T, h, w, 3)
    iio.imwrite(stem.with_suffix(".gif"), video, extension=".gif", duration=50, loop=0)
    if video.shape[1] % 2 or video.shape[2] % 2:
        log.warning("%s: no mp4 for odd frame sizes %s (4:2:0 chroma); the GIF is written", stem, video.shape[1:3])
        return
    encode(video, stem.with_suffix(".mp4"), fps)


def paper_tables(task_results: dict[str, dict]) -> dict[str, dict]:
    """The papers' results tables of the simulators evaluated (their `Simulator.paper_table`, LIBERO's per-suite
    row), each row with `successes` and `episodes` given its 95 % Wilson interval; {} when none has one."""
    tables: dict[str, dict] = {}
    for name in dict.fromkeys(r["simulator"] for r in task_results.values()):
        sim = SIMULATORS[name]
        if sim.paper_table is not None:
            tables.update(sim.paper_table({t: r for t, r in task_results.items() if r["simulator"] == name}))
    for row in tables.values():
        if "successes" in row:
            row["ci95"] = list(wilson_interval(row["successes"], row["episodes"]))
    return tables


def plot_summary(results: dict, path: Path) -> None:
    from reasonact.plotting import pyplot

    plt = pyplot()

    tasks = list(results["tasks"])
    rates = np.array([results["tasks"][t]["success_rate"] for t in tasks])
    ci = np.array([results["tasks"][t]["ci95"] for t in tasks]).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(tasks) + 2), 3.5))
    ax.bar(range(len(tasks)), rates, yerr=[rates - ci[:, 0], ci[:, 1] - rates], capsize=3, color="tab:blue")
    labels = list(task_labels(tasks).values())
    ax.set_xticks(range(len(tasks)), labels, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(f"{results['config']['policy']}: {results['config']['episodes']} episodes/task")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
