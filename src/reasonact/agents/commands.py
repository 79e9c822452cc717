"""CLI verbs of `reasonact agent`: run (one episode → trace JSON), study (structured vs flat, before and
after fine-tuning), sandbox-audit (the sandbox's escape suite → JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reasonact.agents.agent import EpisodeConfig
from reasonact.agents.finetune import EpisodeGRPOConfig, FinetuneConfig
from reasonact.agents.sandbox import SandboxConfig
from reasonact.agents.study import StudyConfig
from reasonact.training.run_loop import OptimConfig


@dataclass(frozen=True)
class RunConfig:
    env: str = "babyai"  # problems[:family] | babyai[:env-id] | split
    flow: str = "structured"  # structured | flat
    lm: str = "gemma"  # gemma | random | teacher (the rule-based expert) | a fine-tuned student's policy directory
    window: int = 384  # characters of each prompt a student directory sees (as in its fine-tuning)
    seed: int = 0  # episode seed (test split)
    temperature: float = 0.0  # LM sampling temperature (0 = greedy)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)  # malformed-call budget, sandbox limits
    out: Path = Path("runs/agent/trace.json")  # the episode's trace


RUN_PRESETS: dict[str, tuple[str, RunConfig]] = {
    "default": ("One BabyAI episode, structured agent, Gemma 3 270M.", RunConfig()),
    "problems": ("One arithmetic problem with tools, structured agent.", RunConfig(env="problems:arithmetic")),
    "split": ("Two agents with split information, structured.", RunConfig(env="split")),
}


def run(config: RunConfig) -> None:
    from reasonact.agents.agent import FLOWS, run_episode
    from reasonact.agents.envs import make_env
    from reasonact.agents.finetune import student_lm
    from reasonact.agents.study import LMS
    from reasonact.agents.teacher import teacher_lm

    if config.flow not in FLOWS:
        raise ValueError(f"flow: expected one of {sorted(FLOWS)}, received {config.flow!r}")
    if config.lm == "teacher":
        lm = teacher_lm()
    elif config.lm in LMS:
        lm = LMS[config.lm](config.temperature)
    elif (Path(config.lm) / "config.json").exists():
        lm = student_lm(config.lm, config.window, config.temperature)
    else:
        expected = f"{sorted(LMS)}, 'teacher' or a policy directory (with config.json)"
        raise ValueError(f"lm: expected one of {expected}, received {config.lm!r}")
    trace = run_episode(make_env(config.env), FLOWS[config.flow], lm, config.seed, config.flow, config.episode)
    trace.save(config.out)
    for event in trace.events:
        print(f"[{event.step:>2} {event.role} {event.function:>11}] {event.output!r} -> {event.observation[:80]!r}")
    print(f"{trace.ended}: success={trace.success} lm_calls={trace.lm_calls} errors={trace.errors} → {config.out}")


STUDY_PRESETS: dict[str, tuple[str, StudyConfig]] = {
    "default": (
        "Fine-tuning study: teacher, student before / after SFT / after GRPO, structured vs flat, 8 held-out seeds.",
        StudyConfig(),
    ),
    "tiny": (
        "Seconds: the fine-tuning pipeline on one environment with a few steps, runs/ output (plumbing check).",
        StudyConfig(
            envs=("problems:arithmetic",),
            seeds=2,
            finetune=FinetuneConfig(
                teacher_seeds=2,
                sft_batch=4,
                window=256,
                sft=OptimConfig(steps=2, lr=1e-3),
                grpo=EpisodeGRPOConfig(questions=1, group=2, max_rows=4, optim=OptimConfig(steps=1, lr=1e-4)),
                seeds=(0,),
                root=Path("runs/agent_study_tiny/finetune"),
            ),
            out=Path("runs/agent_study_tiny/agent_study.json"),
            traces=Path("runs/agent_study_tiny"),
        ),
    ),
    "zero-shot": (
        "Gemma 3 270M as it is (no fine-tuning), structured vs flat, 6 held-out seeds of each environment.",
        StudyConfig(
            mode="zero-shot",
            seeds=6,
            out=Path("docs/results/agent_study_gemma.json"),
            traces=Path("runs/agent_study_gemma"),
        ),
    ),
    "zero-shot-tiny": (
        "Seconds: an untrained char-level LM as it is, 2 seeds, runs/ output (plumbing check).",
        StudyConfig(
            mode="zero-shot",
            lm="random",
            seeds=2,
            out=Path("runs/agent_study_zero_shot_tiny/agent_study.json"),
            traces=Path("runs/agent_study_zero_shot_tiny"),
        ),
    ),
}


def study(config: StudyConfig) -> None:
    """`reasonact agent study`: one torch thread (fastest for the small students on this busy CPU)."""
    import torch

    from reasonact.agents.study import run_study

    torch.set_num_threads(1)
    summary = run_study(config, progress=True)
    if config.mode == "zero-shot":
        for flow, row in summary["pooled"].items():
            calls = row["lm_calls_per_episode"]
            print(f"{flow:>10}: success {row['success']:.2f} CI {row['ci95']}  LM calls/episode {calls:.1f}")
    else:
        for flow in config.flows:
            print(f"{flow:>10}: " + "  ".join(f"{stage} {value:.2f}" for stage, value in summary[flow].items()))
    print(f"→ {config.out} (+ .md), traces under {config.traces}")


@dataclass(frozen=True)
class AuditConfig:
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig(wall_seconds=4.0))  # limits under test
    kernel_layers: bool = True  # also run the suite without the audit hook (namespaces only)
    out: Path = Path("runs/agent/sandbox_audit.json")  # report: tried, contained, cases, …


def sandbox_audit(config: AuditConfig) -> None:
    from reasonact.agents.audit import sandbox_audit as audit
    from reasonact.atomic import atomic_write_json

    report = audit(config.sandbox, config.kernel_layers)
    atomic_write_json(config.out, report)
    for name, contained in report["cases"].items():
        print(f"{'contained' if contained else 'ESCAPED  '}  {name:<26} {report['outcomes'][name]['error']}")
    print(f"{report['contained']}/{report['tried']} contained; layers {json.dumps(report['layers'])} → {config.out}")
