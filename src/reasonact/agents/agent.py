"""Pangu-Agent (Christianos et al., arXiv 2312.14878): an agent = policy LM + memory + functions.

Intrinsic functions (`plan`, `think`, `reflect`, `use_tool`, `communicate`) read the memory through
their prompt and write their result back to it (§2: μ_t = F(m_t), m_{t+1} = update(m_t, μ_t));
the extrinsic function (`act`) acts on the environment. A `Flow` composes them declaratively:
functions called once at the start, then the same ordered list every step (e.g. plan, then
think → use_tool → act → reflect). The flat ReAct baseline (`react`) is one extrinsic function
whose prompt is the whole transcript and whose output may be a tool call, a message or an action.

Every call becomes an `Event` of the episode's `Trace`. Malformed outputs (unparseable, an unknown
tool, bad arguments) are error observations the agent sees next, counted in the trace; after
`max_errors` malformed *actions* in a row (the same budget for both flows: intrinsic failures are
counted but do not end the episode) it ends cleanly with `ended = "errors"`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reasonact.agents.envs.base import TextEnv
from reasonact.agents.memory import Memory
from reasonact.agents.policy import AgentLM
from reasonact.agents.prompts import render
from reasonact.agents.sandbox import SandboxConfig
from reasonact.agents.tools import Tool, calculator_tool, call_tool, parse_call, python_tool
from reasonact.agents.trace import Event, Trace


@dataclass
class Agent:
    role: str
    memory: Memory
    tools: dict[str, Tool]
    peer: Agent | None = None  # the other agent, for `communicate`
    done: bool = False  # the episode ended (an answer or the goal)
    success: bool = False
    last_action: str = "-"
    steps: int = 0  # environment steps taken


Apply = Callable[[Agent, TextEnv, str], tuple[str, str | None]]  # (agent, env, LM output) → (observation, error)


@dataclass(frozen=True)
class Function:
    kind: str  # intrinsic (memory only) or extrinsic (acts on the environment)
    apply: Apply
    max_new_tokens: int = 32  # longest LM output for this function
    applies: Callable[[Agent], bool] = lambda agent: True  # skipped when False (no tools, no peer)


def _write(slot: str) -> Apply:
    """An intrinsic function that stores the LM's line in memory slot `slot` (a list or a string)."""

    def apply(agent: Agent, env: TextEnv, output: str) -> tuple[str, str | None]:
        if not output:
            return "error: empty output", "unparseable"
        current = getattr(agent.memory, slot)
        if isinstance(current, list):
            current.append(output)
        else:
            setattr(agent.memory, slot, output)
        return "", None

    return apply


def _use_tool(agent: Agent, env: TextEnv, output: str) -> tuple[str, str | None]:
    if output.strip("`. ").lower() in ("none", "no", "-"):
        return "", None
    call, result = call_tool(agent.tools, output)
    agent.memory.tool_results.append((call, result.text))
    return result.text, result.error


def _communicate(agent: Agent, env: TextEnv, output: str) -> tuple[str, str | None]:
    if not output or agent.peer is None:
        return "error: empty message", "unparseable"
    agent.peer.memory.inbox.append((agent.role, output))
    agent.peer.memory.transcript.append(f"Message from {agent.role}: {output}")
    agent.memory.sent.append(output)
    return "sent", None


def _act(agent: Agent, env: TextEnv, output: str) -> tuple[str, str | None]:
    action = env.parse_action(output)
    if action is None:
        observation = f"error: {output!r} is not an action here; actions: {env.action_forms}"
        agent.memory.history.append((output or "(empty)", observation))
        return observation, "unparseable"
    step = env.step(agent.role, action)
    agent.steps += 1
    agent.memory.observation, agent.last_action = step.observation, action
    agent.memory.history.append((action, step.observation))
    agent.done, agent.success = step.done, step.success
    return step.observation, None


def _react(agent: Agent, env: TextEnv, output: str) -> tuple[str, str | None]:
    """ReAct's single step: an environment action, a tool call, or (with a peer) `message: …`."""
    observation: str
    error: str | None
    if env.parse_action(output) is not None:
        observation, error = _act(agent, env, output)
    elif agent.peer is not None and output.lower().startswith(("message:", "say:")):
        observation, error = _communicate(agent, env, output.split(":", 1)[1].strip())
    elif parse_call(output) is not None:
        _, result = call_tool(agent.tools, output)
        observation, error = result.text, result.error
    else:
        observation, error = f"error: {output!r} is neither an action nor a tool call", "unparseable"
    agent.memory.transcript += [f"Action: {output}", f"Observation: {observation}"]
    return observation, error


FUNCTIONS: dict[str, Function] = {
    "plan": Function("intrinsic", _write("plan"), 40),
    "think": Function("intrinsic", _write("thoughts"), 40),
    "reflect": Function("intrinsic", _write("reflections"), 32),
    "use_tool": Function("intrinsic", _use_tool, 48, lambda agent: bool(agent.tools)),
    "communicate": Function("intrinsic", _communicate, 32, lambda agent: agent.peer is not None),
    "act": Function("extrinsic", _act, 16),
    "react": Function("extrinsic", _react, 48),
}


@dataclass(frozen=True)
class Flow:
    start: tuple[str, ...] = ("plan",)  # called once per agent when the episode starts
    step: tuple[str, ...] = ("communicate", "think", "use_tool", "act", "reflect")  # every step, in order

    def __post_init__(self) -> None:
        for name in (*self.start, *self.step):
            if name not in FUNCTIONS:
                raise ValueError(f"flow: expected functions from {sorted(FUNCTIONS)}, received {name!r}")
        if not any(FUNCTIONS[name].kind == "extrinsic" for name in self.step):
            raise ValueError(f"flow.step: expected an extrinsic function (act or react), received {self.step}")


FLOWS: dict[str, Flow] = {
    "structured": Flow(),  # plan once; communicate → think → use_tool → act → reflect each step
    "flat": Flow(start=(), step=("react",)),  # ReAct: one call per step over the whole transcript
}


@dataclass(frozen=True)
class EpisodeConfig:
    max_errors: int = 6  # malformed actions (act/react) in a row before the episode ends (ended = "errors")
    recent: int = 3  # memory entries of each kind shown in prompts
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)  # limits of the python tool


def make_tools(names: tuple[str, ...], sandbox: SandboxConfig, scratch: Path | None = None) -> dict[str, Tool]:
    available: dict[str, Callable[[], Tool]] = {
        "calculator": lambda: calculator_tool,
        "python": lambda: python_tool(sandbox, scratch),
    }
    unknown = set(names) - set(available)
    if unknown:
        raise ValueError(f"tools: expected names from {sorted(available)}, received {sorted(unknown)}")
    return {name: available[name]() for name in names}


def run_episode(
    env: TextEnv, flow: Flow, lm: AgentLM, seed: int, flow_name: str = "custom", config: EpisodeConfig | None = None
) -> Trace:
    """One episode of `env`'s `seed`: every role runs `flow` with the same LM; the full trace."""
    config = config or EpisodeConfig()
    observations = env.reset(seed)
    tools = make_tools(env.tools, config.sandbox)
    agents = [
        Agent(role, Memory(env.task(role), env.instructions(role), observations[role]), tools) for role in env.roles
    ]
    if len(agents) == 2:
        agents[0].peer, agents[1].peer = agents[1], agents[0]
    trace = Trace(env.name, seed, flow_name, lm.name)
    errors_in_a_row = 0

    def call(agent: Agent, name: str, step: int) -> None:
        nonlocal errors_in_a_row
        function = FUNCTIONS[name]
        if not function.applies(agent):
            return
        fields = agent.memory.view(config.recent) | {
            "tools": ", ".join(agent.tools) or "none",
            "peer": agent.peer.role if agent.peer else "-",
            "last_action": agent.last_action,
        }
        prompt = render(name, fields)
        output = lm.complete([prompt], function.max_new_tokens, seed=seed * 1000 + len(trace.events))[0]
        observation, error = function.apply(agent, env, output)
        trace.events.append(Event(step, agent.role, name, prompt, output, observation, error))
        if function.kind == "extrinsic":  # the same budget for every flow, whatever its intrinsic calls
            errors_in_a_row = errors_in_a_row + 1 if error else 0

    for agent in agents:
        for name in flow.start:
            call(agent, name, -1)
    for step in range(env.max_steps):
        for agent in agents:
            for name in flow.step:
                if any(a.done for a in agents) or errors_in_a_row >= config.max_errors:
                    break
                call(agent, name, step)
    trace.steps = sum(agent.steps for agent in agents)
    finished = next((a for a in agents if a.done), None)
    trace.success = bool(finished and finished.success)
    trace.ended = (
        ("success" if trace.success else "failed")
        if finished
        else ("errors" if errors_in_a_row >= config.max_errors else "max_steps")
    )
    return trace
