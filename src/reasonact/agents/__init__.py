"""Structured agents (Pangu-Agent, arXiv 2312.14878): policy LM + memory + intrinsic/extrinsic
functions composed by a `Flow`, tools (calculator, sandboxed Python), text environments, traces."""

from reasonact.agents.agent import FLOWS, FUNCTIONS, Agent, EpisodeConfig, Flow, run_episode
from reasonact.agents.calculator import CalculatorError, calculate
from reasonact.agents.envs import TextEnv, make_env
from reasonact.agents.memory import Memory
from reasonact.agents.policy import AgentLM, BackendLM, ScriptedLM, gemma_lm
from reasonact.agents.sandbox import ExecResult, SandboxConfig, run_python
from reasonact.agents.trace import Event, Trace, load_trace, sft_records

__all__ = [
    "FLOWS",
    "FUNCTIONS",
    "Agent",
    "AgentLM",
    "BackendLM",
    "CalculatorError",
    "EpisodeConfig",
    "Event",
    "ExecResult",
    "Flow",
    "Memory",
    "SandboxConfig",
    "ScriptedLM",
    "TextEnv",
    "Trace",
    "calculate",
    "gemma_lm",
    "load_trace",
    "make_env",
    "run_episode",
    "run_python",
    "sft_records",
]
