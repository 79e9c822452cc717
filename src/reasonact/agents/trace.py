"""Episode traces: every function call with its prompt, the LM's output and what came back.

A trace is plain JSON (`Trace.save`, atomic). Malformed calls are counted by kind in
`errors` (unparseable, unknown_function, bad_arguments, tool_error). `sft_records` is the hook
fine-tuning starts from: the (prompt, completion) pairs of the successful episodes' well-formed
calls (Pangu-Agent §4: SFT on traces filtered by outcome).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonact.atomic import atomic_write_json

ERROR_KINDS = ("unparseable", "unknown_function", "bad_arguments", "tool_error")


@dataclass
class Event:
    step: int  # extrinsic step index (-1: the episode's start functions)
    role: str  # which agent called
    function: str  # think, plan, reflect, use_tool, communicate, act, react
    prompt: str  # exactly what the LM was given
    output: str  # the LM's one-line completion
    observation: str  # what the function returned to the agent (tool output, env observation, error)
    error: str | None = None  # None or one of ERROR_KINDS


@dataclass
class Trace:
    env: str  # environment name
    seed: int  # episode seed (within the environment's split)
    flow: str  # structured | flat | …
    lm: str  # policy LM name
    events: list[Event] = field(default_factory=list)
    success: bool = False  # the environment's outcome
    ended: str = ""  # success | failed | max_steps | errors
    steps: int = 0  # environment steps taken (all roles; tool calls and malformed actions excluded)

    @property
    def lm_calls(self) -> int:
        return len(self.events)

    @property
    def errors(self) -> dict[str, int]:
        counts = Counter(e.error for e in self.events if e.error)
        return {kind: counts.get(kind, 0) for kind in ERROR_KINDS}

    def to_dict(self) -> dict:
        return {**asdict(self), "lm_calls": self.lm_calls, "errors": self.errors}

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_dict())


def load_trace(path: Path) -> Trace:
    data = json.loads(Path(path).read_text())
    for derived in ("lm_calls", "errors"):
        data.pop(derived, None)
    data["events"] = [Event(**e) for e in data["events"]]
    return Trace(**data)


def sft_records(traces: Iterable[Trace]) -> list[dict[str, str]]:
    """{prompt, completion, function, env} for every error-free call of every successful trace."""
    return [
        {"prompt": e.prompt, "completion": " " + e.output, "function": e.function, "env": t.env}
        for t in traces
        if t.success
        for e in t.events
        if e.error is None and e.output
    ]
