"""Structured (Pangu-Agent intrinsic functions) vs flat ReAct agents on held-out seeds.

Both agents use the same policy LM, environments and seeds (the environments' `test` split);
success rates come with Wilson 95 % intervals, pooled over environments and per environment,
with the LM calls and malformed-call counts each agent spent. Every trace is kept as JSON.

`mode="finetune"` (the default) is issue 14's before/after comparison: the rule-based teacher
(expert baseline), the student before fine-tuning, after SFT on the teacher's successful train
traces, and after GRPO over episodes (`agents.finetune`), the same budget for both agents, over
several fine-tuning seeds. `mode="zero-shot"` evaluates one LM (Gemma 3 270M) as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reasonact.agents.agent import FLOWS, EpisodeConfig, run_episode
from reasonact.agents.envs import make_env
from reasonact.agents.finetune import FinetuneConfig, finetune, sft_examples, student_lm, teacher_traces
from reasonact.agents.policy import AgentLM, BackendLM, gemma_lm
from reasonact.agents.teacher import teacher_lm
from reasonact.agents.trace import ERROR_KINDS, Trace
from reasonact.atomic import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class StudyConfig:
    envs: tuple[str, ...] = ("problems:arithmetic", "babyai", "split")  # environments (see `make_env`)
    flows: tuple[str, ...] = ("structured", "flat")  # agents compared, names in FLOWS
    seeds: int = 8  # held-out episodes per environment: test-split seeds 0 .. seeds-1
    mode: Literal["finetune", "zero-shot"] = "finetune"  # teacher/before/SFT/GRPO, or one LM as it is
    lm: str = "gemma"  # zero-shot LM: gemma (Gemma 3 270M base) or random (an untrained char-level Llama)
    temperature: float = 0.0  # sampling temperature of the evaluated LMs (0 = greedy)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # student, SFT and GRPO budget, seeds
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)  # malformed-call budget, sandbox limits
    out: Path = Path("docs/results/agent_study.json")  # summary JSON (+ a Markdown table next to it)
    traces: Path = Path("runs/agent_study")  # every episode's trace as JSON

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds: expected >= 1 held-out episodes per environment, received {self.seeds}")
        unknown = [f for f in self.flows if f not in FLOWS]
        if unknown:
            raise ValueError(f"flows: expected names from {sorted(FLOWS)}, received {unknown}")
        if self.lm not in LMS:
            raise ValueError(f"lm: expected one of {sorted(LMS)}, received {self.lm!r}")


def random_lm(temperature: float) -> BackendLM:
    """An untrained (randomly initialised) char-level Llama: the floor any trained LM must beat."""
    import torch

    from reasonact.reasoning.backends.hf import HFBackend
    from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer

    torch.manual_seed(0)
    tokenizer = char_tokenizer()
    backend = HFBackend(build_step_lm(64, 2, 2, len(tokenizer)), tokenizer, threads=1)
    backend.max_context = 8192  # rotary positions: long character prompts fit
    return BackendLM(backend, max(temperature, 1.0), name="random-char-llama")


LMS: dict[str, Callable[[float], AgentLM]] = {"gemma": gemma_lm, "random": random_lm}


def summarise(traces: list[Trace]) -> dict:
    from reasonact.stats import wilson_interval

    wins = sum(t.success for t in traces)
    low, high = wilson_interval(wins, len(traces))
    errors = {kind: sum(t.errors[kind] for t in traces) for kind in ERROR_KINDS}
    return {
        "success": wins / len(traces),
        "ci95": [round(low, 4), round(high, 4)],
        "episodes": len(traces),
        "lm_calls_per_episode": sum(t.lm_calls for t in traces) / len(traces),
        "malformed_calls": errors,
        "ended": {e: sum(t.ended == e for t in traces) for e in ("success", "failed", "max_steps", "errors")},
    }


STAGES = ("teacher", "before", "after_sft", "after_grpo")  # rows of the fine-tuning study


def evaluate(lm: AgentLM, flow: str, config: StudyConfig, folder: Path) -> dict[str, list[Trace]]:
    """`flow` with `lm` on the held-out seeds of every environment → {env: traces}; traces saved under `folder`."""
    out = {}
    for env_name in config.envs:
        env = make_env(env_name, split="test")
        out[env_name] = [run_episode(env, FLOWS[flow], lm, seed, flow, config.episode) for seed in range(config.seeds)]
        for trace in out[env_name]:
            trace.save(folder / env_name.replace(":", "_") / flow / f"seed_{trace.seed}.json")
    return out


def paired(structured: list[Trace], flat: list[Trace]) -> dict[str, int]:
    """Same env and seed: where the two agents disagree."""
    pairs = list(zip(structured, flat, strict=True))
    return {
        "structured_only": sum(a.success and not b.success for a, b in pairs),
        "flat_only": sum(b.success and not a.success for a, b in pairs),
    }


def run_study(config: StudyConfig, lm: AgentLM | None = None, progress: bool = False) -> dict:
    """Run the study of `config.mode`; writes the summary JSON/Markdown and every trace."""
    start = time.monotonic()
    summary = zero_shot_study(config, lm, progress) if config.mode == "zero-shot" else finetune_study(config, progress)
    summary["wall_s"] = round(time.monotonic() - start, 1)
    atomic_write_json(config.out, summary)
    atomic_write_bytes(config.out.with_suffix(".md"), markdown(summary).encode())
    return summary


def zero_shot_study(config: StudyConfig, lm: AgentLM | None, progress: bool) -> dict:
    """Every (environment, seed) with every flow and one LM as it is."""
    lm = lm or LMS[config.lm](config.temperature)
    traces: dict[str, list[Trace]] = {flow: [] for flow in config.flows}
    per_env: dict[str, dict] = {env: {} for env in config.envs}
    for flow in config.flows:
        for env_name, runs in evaluate(lm, flow, config, config.traces).items():
            traces[flow] += runs
            per_env[env_name][flow] = summarise(runs)
            if progress:
                print(f"{env_name:>22} {flow:>10}: success {per_env[env_name][flow]['success']:.2f} ({lm.name})")
    pooled = {flow: summarise(runs) for flow, runs in traces.items()}
    summary = {"seeds": list(range(config.seeds)), "lm": lm.name, "envs": list(config.envs)}
    summary |= {"pooled": pooled, "per_env": per_env}
    if {"structured", "flat"} <= set(config.flows):
        s, f = pooled["structured"]["success"], pooled["flat"]["success"]
        summary |= {"structured_success": s, "flat_success": f, "structured_minus_flat": s - f}
        summary["paired"] = paired(traces["structured"], traces["flat"])
    return summary


def finetune_study(config: StudyConfig, progress: bool) -> dict:
    """Teacher, student before, after SFT and after GRPO, per flow, with the same fine-tuning budget."""
    ft = config.finetune
    traces: dict[str, dict[str, dict[str, list[Trace]]]] = {s: {f: {} for f in config.flows} for s in STAGES}
    per_seed: dict[str, dict[str, list[float]]] = {s: {f: [] for f in config.flows} for s in STAGES[2:]}
    teacher_train = {}

    def record(stage: str, flow: str, runs: dict[str, list[Trace]]) -> None:
        for env_name, env_traces in runs.items():
            traces[stage][flow].setdefault(env_name, []).extend(env_traces)
        if stage in per_seed:
            flat_runs = [t for env_traces in runs.values() for t in env_traces]
            per_seed[stage][flow].append(sum(t.success for t in flat_runs) / len(flat_runs))
        if progress:
            shown = {env: f"{sum(t.success for t in ts)}/{len(ts)}" for env, ts in runs.items()}
            print(f"{stage:>10} {flow:>10}: {shown}", flush=True)

    for flow in config.flows:
        train = teacher_traces(config.envs, flow, ft.teacher_seeds, config.episode)
        examples = sft_examples(train, ft.window)
        teacher_train[flow] = {"success": sum(t.success for t in train) / len(train), "sft_examples": len(examples)}
        record("teacher", flow, evaluate(teacher_lm(), flow, config, config.traces / "teacher"))
        record("before", flow, evaluate(student_lm(ft.init, ft.window), flow, config, config.traces / "before"))
        for seed in ft.seeds:
            for stage, policy in finetune(ft, config.envs, flow, examples, seed, progress).items():
                lm = student_lm(policy, ft.window, config.temperature)
                record(stage, flow, evaluate(lm, flow, config, config.traces / f"{stage}_seed{seed}"))

    def pooled(stage: str, flow: str) -> list[Trace]:
        return [t for env_traces in traces[stage][flow].values() for t in env_traces]

    def row(stage: str, flow: str) -> dict:
        out = summarise(pooled(stage, flow))
        if stage in per_seed:
            out["per_seed"] = per_seed[stage][flow]  # success of each fine-tuning seed
        return out

    stages = {stage: {flow: row(stage, flow) for flow in config.flows} for stage in STAGES}
    summary = {
        "mode": "finetune",
        "seeds": list(range(config.seeds)),
        "finetune_seeds": list(ft.seeds),
        "envs": list(config.envs),
        "lm": f"student {ft.init} (window {ft.window} chars)",
        "teacher_train": teacher_train,
        "stages": stages,
        "per_env": {
            env: {flow: {s: summarise(traces[s][flow][env]) for s in STAGES} for flow in config.flows}
            for env in config.envs
        },
        "budget": {"sft_steps": ft.sft.steps, "sft_batch": ft.sft_batch, "grpo_steps": ft.grpo.optim.steps,
                   "grpo_episodes_per_step": ft.grpo.questions * ft.grpo.group},
    }  # fmt: skip
    for flow in config.flows:
        summary[flow] = {stage: stages[stage][flow]["success"] for stage in STAGES}
    if {"structured", "flat"} <= set(config.flows):
        s, f = stages["after_grpo"]["structured"]["success"], stages["after_grpo"]["flat"]["success"]
        summary |= {"structured_success": s, "flat_success": f, "structured_minus_flat": s - f}
        summary["paired"] = paired(pooled("after_grpo", "structured"), pooled("after_grpo", "flat"))
    return summary


def markdown(summary: dict) -> str:
    return finetune_markdown(summary) if summary.get("mode") == "finetune" else zero_shot_markdown(summary)


def cell(row: dict) -> str:
    return f"{row['success']:.2f} ({row['ci95'][0]:.2f}–{row['ci95'][1]:.2f})"


def finetune_markdown(summary: dict) -> str:
    b = summary["budget"]
    lines = [
        "# Agent study: structured vs flat, before and after fine-tuning",
        "",
        f"Held-out test-split seeds {summary['seeds'][0]}..{summary['seeds'][-1]} per environment; "
        f"fine-tuning seeds {summary['finetune_seeds']} (episodes pooled over them); {summary['lm']}; "
        f"the same budget for both agents: SFT {b['sft_steps']} steps × {b['sft_batch']} calls, then GRPO "
        f"{b['grpo_steps']} steps × {b['grpo_episodes_per_step']} episodes. Generated by `reasonact agent study`. "
        "Success with Wilson 95 % intervals.",
        "",
        "| environment | agent | teacher | before | after SFT | after GRPO |",
        "|---|---|---|---|---|---|",
    ]
    rows = list(summary["per_env"].items())
    rows.append(("**pooled**", {f: {s: summary["stages"][s][f] for s in STAGES} for f in summary["stages"]["before"]}))
    for env, flows in rows:
        for flow, stages in flows.items():
            lines.append(f"| {env} | {flow} | " + " | ".join(cell(stages[s]) for s in STAGES) + " |")
    lines.append("")
    for flow, train in summary["teacher_train"].items():
        seeds = {s: [round(x, 3) for x in summary["stages"][s][flow]["per_seed"]] for s in STAGES[2:]}
        lines.append(
            f"- {flow}: teacher train success {train['success']:.2f}, {train['sft_examples']} SFT calls; "
            f"per fine-tuning seed: after SFT {seeds['after_sft']}, after GRPO {seeds['after_grpo']}"
        )
    if "structured_minus_flat" in summary:
        difference = f"{summary['structured_minus_flat']:+.2f} (paired: {summary['paired']})"
        lines += ["", f"structured − flat after GRPO: {difference}"]
    return "\n".join(lines) + "\n"


def zero_shot_markdown(summary: dict) -> str:
    lines = [
        f"# Agent study: {' vs '.join(summary['pooled'])} ({summary['lm']})",
        "",
        f"Held-out test-split seeds {summary['seeds'][0]}..{summary['seeds'][-1]} per environment; "
        "generated by `reasonact agent study zero-shot`. Success with Wilson 95 % intervals.",
        "",
        "| environment | agent | success | 95 % CI | LM calls / episode | malformed calls "
        "| ended (success/failed/max/errors) |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [(env, flows) for env, flows in summary["per_env"].items()] + [("**pooled**", summary["pooled"])]
    for env, flows in rows:
        for flow, r in flows.items():
            ended = "/".join(str(v) for v in r["ended"].values())
            lines.append(
                f"| {env} | {flow} | {r['success']:.2f} | {r['ci95'][0]:.2f}–{r['ci95'][1]:.2f} | "
                f"{r['lm_calls_per_episode']:.1f} | {sum(r['malformed_calls'].values())} | {ended} |"
            )
    if "structured_minus_flat" in summary:
        lines += ["", f"structured − flat: {summary['structured_minus_flat']:+.2f} (paired: {summary['paired']})"]
    return "\n".join(lines) + "\n"
