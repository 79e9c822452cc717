"""`reasonact vla eval <checkpoint> --suite mt10 [--tasks …] --episodes 50 --out runs/vla_eval/x.json`.

A trained checkpoint (`vla/policy.py`) runs closed loop in the evaluation harness (batched over the vector
env's sub-envs), K fixed-seed episodes per task; beside it, on the same seeds, the scripted expert (cached per
task under `expert_cache`, so a second evaluation does not re-run it) and, with `--baselines`, the mean-chunk,
nearest-state and random baselines fitted on the checkpoint's own training data (`evaluation/baselines.py`).

    out (JSON)   tasks → {success, ci, expert_success, expert_ci, baselines: {name: {success, ci}}},
                 mean_success, ci, expert_mean_success, baselines → {name: mean_success}, checkpoint facts
    out without its suffix/   <policy>/results.json, summary.png, videos/*.gif (rollout GIFs) per policy

Evaluation seeds start at 10,000; `reasonact data collect` draws its episodes from seeds below that, so the
episodes are not the training ones (LIBERO: seed s is the benchmark's fixed initial state s % 50).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from reasonact.atomic import atomic_write_json, read_json
from reasonact.checks import check_range
from reasonact.devices import placement
from reasonact.envs import EnvConfig, expand_tasks, simulator_of
from reasonact.evaluation.baselines import BASELINES
from reasonact.evaluation.controllers import ControllerFactory
from reasonact.evaluation.harness import EvalConfig, evaluate
from reasonact.threads import torch_threads

CHECKPOINT_HELP = (
    "a `reasonact vla train` or `reasonact bc train` run directory (its latest checkpoint) or one of its "
    "checkpoints/step_<n>"
)


@dataclass(frozen=True)
class VLAEvalConfig:
    checkpoint: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="CHECKPOINT", help=CHECKPOINT_HELP)] = Path(
        "runs/vla/tiny"
    )
    suite: str = "mt10"  # a suite ("mt10", "mt50", "libero_spatial", …) or one task name
    tasks: tuple[str, ...] = ()  # a subset of the suite's tasks (() = all of them)
    episodes: int = 50  # K: episodes per task, seeds seed … seed + K − 1
    seed: int = 10_000  # first evaluation seed (collection uses seeds below it)
    n_action_steps: int = 0  # actions of each predicted chunk executed before re-planning (0 = the whole chunk)
    ema: bool = True  # the checkpoint's EMA weights when it has them (the trainer's evaluation weights)
    image_size: int = 0  # env camera pixels; 0 = the model's input size
    max_steps: int = 0  # episode time limit; 0 = the task's default
    instruction: str = "train"  # "train" (canonical instructions) or "heldout" (held-out paraphrases, never trained on)
    num_envs: int = 2  # vectorised sub-envs per task, batched through one forward pass
    asynchronous: bool = True  # one process per sub-env
    videos_per_task: int = 1  # rollout GIFs per task and policy
    expert: bool = True  # evaluate the scripted expert on the same seeds (expert_success)
    expert_cache: Path = Path("runs/eval/expert_cache")  # per-task expert results, reused by later evaluations
    baselines: tuple[str, ...] = ()  # also evaluate "mean-chunk", "nearest-state", "random" on the same seeds
    out: Path = Path("runs/vla_eval/mt10.json")  # the report; GIFs and raw results in out without its suffix
    device: str = "cpu"  # where the policy's model runs (cpu, cuda, cuda:N, mps)
    dtype: str = "float32"  # the model's weight dtype (float32, bfloat16, float16)
    threads: int = 1  # torch intra-op threads of the policy (1: on a busy 2-core CPU, 2 made it ~30× slower)


PRESETS: dict[str, tuple[str, VLAEvalConfig]] = {
    "default": (
        "MT10, 50 fixed-seed episodes per task, expert beside it: `reasonact vla eval <checkpoint>`.",
        VLAEvalConfig(),
    ),
    "tiny": (
        "Seconds to minutes: the `tiny` run on the tiny dataset's 2 tasks × 2 episodes, in-process.",
        VLAEvalConfig(
            tasks=("reach-v3", "drawer-open-v3"),
            episodes=2,
            max_steps=150,
            num_envs=1,
            asynchronous=False,
            out=Path("runs/vla_eval/tiny.json"),
        ),
    ),
    "libero": (
        "A LIBERO suite on the benchmark's fixed initial states (`--suite libero_spatial`), 50 per task.",
        VLAEvalConfig(
            checkpoint=Path("runs/vla/libero_spatial"),
            suite="libero_spatial",
            out=Path("runs/vla_eval/libero_spatial.json"),
        ),
    ),
}


def select_tasks(suite: str, tasks: tuple[str, ...]) -> list[str]:
    """The suite's tasks, or the named subset of them (an unknown name raises, listing the suite)."""
    members = expand_tasks((suite,))
    unknown = [t for t in tasks if t not in members]
    if unknown:
        raise ValueError(f"tasks: {unknown} are not tasks of suite {suite!r}: {members}")
    return [t for t in members if t in tasks] if tasks else members


def check_compatible(spec, tasks: list[str]) -> None:
    """Each task's simulator must take the checkpoint's actions (dimension named in the error)."""
    for task in tasks:
        dim = len(simulator_of(task).action_low)
        if dim != spec.action_dim:
            raise ValueError(f"suite: {task} takes {dim}-dim actions, the checkpoint predicts action_dim="
                             f"{spec.action_dim} (trained on another robot)")  # fmt: skip


def expert_results(config: VLAEvalConfig, base: EvalConfig, tasks: list[str]) -> dict[str, dict]:
    """The scripted expert's per-task summary on the evaluation's seeds, from the cache or run (and cached)."""
    key = f"s{config.seed}_k{config.episodes}_t{config.max_steps}"
    path = {t: config.expert_cache / f"{t.replace('/', '__')}__{key}.json" for t in tasks}
    missing = [t for t in tasks if not path[t].exists()]
    if missing:
        env = dataclasses.replace(base.env, image_size=0, cameras=())  # the expert reads privileged state only
        run = dataclasses.replace(base, tasks=tuple(missing), policy="expert", env=env, videos_per_task=0,
                                  out=config.expert_cache / "last_run")  # fmt: skip
        for task, summary in evaluate(run)["tasks"].items():
            atomic_write_json(path[task], summary)
    return {t: read_json(path[t]) for t in tasks}


def baseline_factories(
    config: VLAEvalConfig, run_dir: Path, horizon: int, tasks: list[str]
) -> dict[str, ControllerFactory]:
    """The requested baselines, fitted on the training run's datasets and split (every task checked)."""
    from reasonact.evaluation.baselines import Demonstrations, baseline_factory

    unknown = [b for b in config.baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"baselines: expected names from {list(BASELINES)}, received {unknown}")
    demos = None
    if any(b != "random" for b in config.baselines):
        train = read_json(run_dir / "config.json")
        demos = Demonstrations.load(tuple(Path(p) for p in train["datasets"]), horizon, train["heldout_per_task"])
        for task in tasks:
            demos.task(task)
    return {name: baseline_factory(name, demos, config.seed) for name in config.baselines}


def run(config: VLAEvalConfig, load: Callable | None = None) -> dict:
    """Evaluate a trained VLA closed loop beside the expert (and baselines); prints a table, writes `out`.

    `load(checkpoint, ema, n_action_steps)` → the policy (default `vla.policy.load_checkpoint`; `reasonact bc
    eval` passes the BC loader): a `BatchController` with `spec`, `metadata` (incl. its training "run"
    directory) and `n_action_steps`."""
    from reasonact.vla.policy import load_checkpoint

    check_range(config.threads, "threads", low=1)
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before the model is built
    tasks = select_tasks(config.suite, config.tasks)
    policy = (load or load_checkpoint)(config.checkpoint, config.ema, config.n_action_steps)
    policy.model.to(where.device, where.dtype)
    check_compatible(policy.spec, tasks)
    artefacts = config.out.with_suffix("")
    env = EnvConfig(image_size=config.image_size or policy.spec.image_size, cameras=policy.spec.cameras,
                    max_steps=config.max_steps, instruction=config.instruction)  # fmt: skip
    base = EvalConfig(tasks=tuple(tasks), episodes=config.episodes, env=env, num_envs=config.num_envs,
                      asynchronous=config.asynchronous, execute_steps=policy.n_action_steps,
                      videos_per_task=config.videos_per_task, seed=config.seed)  # fmt: skip
    factories = baseline_factories(config, Path(policy.metadata["run"]), policy.spec.horizon, tasks)  # fails fast
    with torch_threads(config.threads):
        vla = evaluate(dataclasses.replace(base, policy="vla", out=artefacts / "vla"), policy)
        expert = expert_results(config, base, tasks) if config.expert else {}
        others = {name: evaluate(dataclasses.replace(base, policy=name, out=artefacts / name), factory)
                  for name, factory in factories.items()}  # fmt: skip
    report = build_report(config, policy.metadata, vla, expert, others)
    atomic_write_json(config.out, report)
    print_report(report)
    print(f"→ {config.out}, {artefacts}/<policy>/videos")
    return report


def build_report(config: VLAEvalConfig, metadata: dict, vla: dict, expert: dict, others: dict) -> dict:
    def entry(summary: dict) -> dict:
        return {"success": summary["success_rate"], "ci": summary["ci95"]}

    tasks = {}
    for task, summary in vla["tasks"].items():
        row = {**entry(summary), "mean_length": summary["mean_length"], "crashed": summary["crashed"]}
        row["expert_success"] = expert[task]["success_rate"] if expert else None
        row["expert_ci"] = expert[task]["ci95"] if expert else None
        row["baselines"] = {name: entry(results["tasks"][task]) for name, results in others.items()}
        tasks[task] = row
    mean = {name: float(np.mean([t["success_rate"] for t in results["tasks"].values()]))
            for name, results in others.items()}  # fmt: skip
    return {
        "checkpoint": metadata["checkpoint"],
        "step": metadata["step"],
        "weights": metadata["weights"],
        "variant": metadata["variant"],
        "n_action_steps": metadata["n_action_steps"],
        "suite": config.suite,
        "episodes": config.episodes,
        "seed": config.seed,
        "tasks": tasks,
        "mean_success": vla["overall"]["success_rate"],
        "ci": vla["overall"]["ci95"],
        "expert_mean_success": float(np.mean([e["success_rate"] for e in expert.values()])) if expert else None,
        "baselines": {name: {"mean_success": m} for name, m in mean.items()},
        **({"suites": vla["suites"]} if "suites" in vla else {}),
    }


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from reasonact.evaluation.harness import task_labels

    def cell(success: float | None, ci: list[float] | None = None) -> str:
        if success is None:
            return "—"
        return f"{success:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    names = list(report["baselines"])
    table = Table(title=f"{report['checkpoint']} ({report['variant']}, {report['weights']} weights): "
                  f"{report['episodes']} episodes per task from seed {report['seed']}")  # fmt: skip
    for column in ("task", f"{report['variant']} [95% CI]", "expert", *names):
        table.add_column(column, overflow="fold")
    labels = task_labels(list(report["tasks"]))
    for task, row in report["tasks"].items():
        table.add_row(labels[task], cell(row["success"], row["ci"]), cell(row["expert_success"], row["expert_ci"]),
                      *(cell(row["baselines"][n]["success"], row["baselines"][n]["ci"]) for n in names))  # fmt: skip
    table.add_row("mean", cell(report["mean_success"], report["ci"]), cell(report["expert_mean_success"]),
                  *(cell(report["baselines"][n]["mean_success"]) for n in names))  # fmt: skip
    Console().print(table)


__all__ = ["PRESETS", "VLAEvalConfig", "run"]
