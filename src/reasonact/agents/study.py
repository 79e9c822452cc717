"""Structured (Pangu-Agent intrinsic functions) vs flat ReAct agents on held-out seeds.

Both agents use the same policy LM, environments and seeds (the environments' `test` split);
success rates come with Wilson 95 % intervals, pooled over environments and per environment,
with the LM calls and malformed-call counts each agent spent. Every trace is kept as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reasonact.agents.agent import FLOWS, EpisodeConfig, run_episode
from reasonact.agents.envs import make_env
from reasonact.agents.policy import AgentLM, BackendLM, gemma_lm
from reasonact.agents.trace import ERROR_KINDS, Trace
from reasonact.atomic import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class StudyConfig:
    envs: tuple[str, ...] = ("problems:arithmetic", "babyai", "split")  # environments (see `make_env`)
    flows: tuple[str, ...] = ("structured", "flat")  # agents compared, names in FLOWS
    seeds: int = 6  # held-out episodes per environment: test-split seeds 0 .. seeds-1
    lm: str = "gemma"  # policy LM: gemma (Gemma 3 270M base) or random (an untrained char-level Llama)
    temperature: float = 0.0  # sampling temperature of the LM (0 = greedy)
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


def run_study(config: StudyConfig, lm: AgentLM | None = None, progress: bool = False) -> dict:
    """Every (environment, seed) with every flow; writes the summary JSON/Markdown and the traces."""
    lm = lm or LMS[config.lm](config.temperature)
    traces: dict[str, list[Trace]] = {flow: [] for flow in config.flows}
    per_env: dict[str, dict] = {}
    start = time.monotonic()
    for env_name in config.envs:
        env = make_env(env_name, split="test")
        for flow in config.flows:
            runs = [run_episode(env, FLOWS[flow], lm, seed, flow, config.episode) for seed in range(config.seeds)]
            for trace in runs:
                trace.save(config.traces / env_name.replace(":", "_") / flow / f"seed_{trace.seed}.json")
            traces[flow] += runs
            per_env.setdefault(env_name, {})[flow] = summarise(runs)
            if progress:
                print(f"{env_name:>22} {flow:>10}: success {per_env[env_name][flow]['success']:.2f} ({lm.name})")
    pooled = {flow: summarise(runs) for flow, runs in traces.items()}
    summary = {
        "seeds": list(range(config.seeds)),
        "lm": lm.name,
        "envs": list(config.envs),
        "pooled": pooled,
        "per_env": per_env,
        "wall_s": round(time.monotonic() - start, 1),
    }
    if {"structured", "flat"} <= set(config.flows):
        s, f = pooled["structured"]["success"], pooled["flat"]["success"]
        pairs = list(zip(traces["structured"], traces["flat"], strict=True))
        summary |= {
            "structured_success": s,
            "flat_success": f,
            "structured_minus_flat": s - f,
            "paired": {  # same env and seed: where the two agents disagree
                "structured_only": sum(a.success and not b.success for a, b in pairs),
                "flat_only": sum(b.success and not a.success for a, b in pairs),
            },
        }
    atomic_write_json(config.out, summary)
    atomic_write_bytes(config.out.with_suffix(".md"), markdown(summary).encode())
    return summary


def markdown(summary: dict) -> str:
    lines = [
        f"# Agent study: {' vs '.join(summary['pooled'])} ({summary['lm']})",
        "",
        f"Held-out test-split seeds {summary['seeds'][0]}..{summary['seeds'][-1]} per environment; "
        "generated by `reasonact agent study`. Success with Wilson 95 % intervals.",
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
