"""`reasonact vla study <preset> --estimate`: time the KI study's pieces on this machine, project its wall time.

The study is long (the `small` preset: 24 runs of 6,000 steps, each evaluated closed loop on 10 tasks), so
before spending hours the cost model is measured where it will run, with the study's own config, data, threads
and device, in a scratch directory (`out/estimate/`, deleted afterwards):

    s_step[v]     seconds per training step of variant v (`Trainer.train_step` on the study's robot + VLM
                  batches, after `warmup` untimed steps; the median of `steps` timed ones)
    s_batch[v]    of which assembling the batch on the CPU (`MixedSampler.batch`): what a GPU does not speed up
    s_open[v]     one held-out open-loop evaluation of the trainer (run every `train.eval_every` steps + at the end)
    s_pre         seconds per pre-stage step (`Pretrainer.train_step`)
    s_episode     seconds per closed-loop episode (`vla eval` of an untrained checkpoint of the first variant on
                  the first task, `episodes` of them: every episode runs to the time limit, so an upper bound), with
                  the study's num_envs / asynchronous / threads
    latency[v]    ms of one `sample_actions` call at batch 1 from a CPU observation (as in the closed loop); a
                  variant's episode costs s_episode plus its extra latency over the first variant's for every
                  chunk (`max_steps` / horizon calls; none counted when max_steps is 0, the task's own limit)

    run[v]   = train.steps · s_step[v] + evaluations · s_open[v] + episodes · s_episode[v]
    episodes = (curve points + 1 held-out) · tasks · `episodes` + `follow_closed_loop` · Σ_task (1 + partners)
    study    = pretrain.steps · s_pre + Σ_v seeds · run[v]

Not counted: each run's setup (5–18 s on the 2-core CPU, in the report) and, not timed, checkpoint writes, the
open-loop language following, VQA and latency measurements. On a GPU every timed call ends on the host (the loss
and the chunk come back to the CPU), so the times are not those of queued kernels.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from reasonact.atomic import atomic_write_json
from reasonact.studies.ki_config import StudyConfig, scheduled_steps, train_config

if TYPE_CHECKING:
    from reasonact.training.vla_trainer import Trainer


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of `fn()`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_variant(cfg: StudyConfig, variant: str, scratch: Path, steps: int, warmup: int) -> tuple[dict, Trainer]:
    """Seconds per step, per open-loop evaluation and ms of one batch-1 `sample_actions` of one variant → (the
    numbers, its trainer)."""
    from reasonact.training.vla_trainer import Trainer

    train = dataclasses.replace(train_config(cfg, variant, 0), out=scratch, init_backbone=None, resume=False,
                                overwrite=True)  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(train)
    setup = time.perf_counter() - start
    for step in range(warmup):
        trainer.train_step(step)
    s_step = timed(lambda: trainer.train_step(warmup), steps)
    s_batch = timed(lambda: trainer.sampler.batch(warmup, train.batch_size, trainer.shard), steps)
    s_open = timed(lambda: trainer.evaluate(baselines=False), 1)
    obs, _, _ = trainer.sampler.assemble(trainer.sampler.frames[:1], [])
    model = trainer.ema.model
    with torch.no_grad():  # the chunk comes back to the observation's device, the CPU: every call ends there
        model.sample_actions(obs)
        latency = timed(lambda: model.sample_actions(obs), 3)
    numbers = {"setup_s": setup, "step_s": s_step, "batch_s": s_batch, "open_loop_eval_s": s_open,
               "latency_ms": 1e3 * latency}  # fmt: skip
    return numbers, trainer


def time_episode(cfg: StudyConfig, trainer: Trainer, scratch: Path, closed_loop: Callable) -> dict:
    """Seconds per closed-loop episode of `trainer`'s untrained model: the study's `episodes` of its first task,
    so that per-task costs (sub-env processes, model load) are shared by as many episodes as in the study;
    `closed_loop(cfg, checkpoint, out)` is the study's own evaluation (`ki.closed_loop`)."""
    from reasonact.vla.evaluate import select_tasks

    trainer.save()
    checkpoint = trainer.run.latest()
    config = dataclasses.replace(cfg, tasks=tuple(select_tasks(cfg.suite, cfg.tasks)[:1]))
    start = time.perf_counter()
    closed_loop(config, checkpoint, scratch / "closed_loop.json")
    wall = time.perf_counter() - start
    return {"episode_s": wall / config.episodes, "episodes": config.episodes, "task": config.tasks[0],
            "num_envs": cfg.num_envs, "asynchronous": cfg.asynchronous, "wall_s": wall}  # fmt: skip


def time_pretrain(cfg: StudyConfig, scratch: Path, steps: int, warmup: int) -> float:
    """Seconds per pre-stage step."""
    from reasonact.training.vlm_pretrain import Pretrainer

    trainer = Pretrainer(dataclasses.replace(cfg.pretrain, out=scratch, name="pretrain", resume=False, overwrite=True,
                                             device=cfg.device))  # fmt: skip
    for step in range(warmup):
        trainer.train_step(step)
    return timed(lambda: trainer.train_step(warmup), steps)


def episodes_per_run(cfg: StudyConfig) -> int:
    """Closed-loop episodes one run's measurement plays (success vs step, held-out instructions, following)."""
    from reasonact.vla.evaluate import select_tasks
    from reasonact.vla.language_following import partners

    tasks = select_tasks(cfg.suite, cfg.tasks)
    following = cfg.follow_closed_loop * sum(1 + len(partners(t)) for t in tasks if partners(t))
    return (len(scheduled_steps(cfg)) + 1) * len(tasks) * cfg.episodes + following


def estimate(cfg: StudyConfig, closed_loop: Callable, steps: int = 5, warmup: int = 2) -> dict:
    """The measured cost model of `cfg` on this machine and the projected hours (module docstring) → also
    written to `out/estimate.json`; `closed_loop` is the study's evaluation of one checkpoint (`ki.closed_loop`)."""
    scratch = cfg.out / "estimate"
    per_variant, episode, chunks = {}, None, cfg.max_steps / cfg.train.model.horizon if cfg.max_steps else 0.0
    try:
        for variant in cfg.planned_variants:
            per_variant[variant], trainer = time_variant(cfg, variant, scratch / "runs", steps, warmup)
            print(f"{variant}: {per_variant[variant]}")
            if episode is None:  # the first variant's untrained checkpoint times the simulator + policy loop
                episode = {"variant": variant, **time_episode(cfg, trainer, scratch, closed_loop)}
                print(f"closed loop: {episode}")
            trainer.dist.close()
        s_pre = time_pretrain(cfg, scratch / "pretrain", steps, warmup)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base_ms = per_variant[episode["variant"]]["latency_ms"]
    n_open = cfg.train.steps // cfg.train.eval_every + 1 if cfg.train.eval_every else 1
    n_episodes = episodes_per_run(cfg)
    for t in per_variant.values():
        s_episode = episode["episode_s"] + chunks * max(t["latency_ms"] - base_ms, 0.0) / 1e3
        train_s = cfg.train.steps * t["step_s"] + n_open * t["open_loop_eval_s"]
        t |= {"episode_s": s_episode, "train_h": train_s / 3600, "measure_h": n_episodes * s_episode / 3600}
    report = {
        "device": cfg.device,
        "threads": cfg.train.threads,
        "load_average": list(os.getloadavg()),
        "pretrain_step_s": s_pre,
        "pretrain_h": cfg.pretrain.steps * s_pre / 3600,
        "closed_loop": episode,
        "curve_points_per_run": len(scheduled_steps(cfg)),
        "episodes_per_run": n_episodes,
        "variants": per_variant,
        "train_h": sum(len(cfg.planned_seeds) * t["train_h"] for t in per_variant.values()),
        "measure_h": sum(len(cfg.planned_seeds) * t["measure_h"] for t in per_variant.values()),
    }
    report["study_h"] = report["pretrain_h"] + report["train_h"] + report["measure_h"]
    atomic_write_json(cfg.out / "estimate.json", report)
    return report


__all__ = ["estimate"]
