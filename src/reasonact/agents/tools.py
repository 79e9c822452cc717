"""Tools the agent calls as `name: input`: the calculator and the sandboxed Python interpreter.

A tool never raises into the agent loop: a failure (bad input, an exception in the code, a
sandbox limit) comes back as a `ToolResult` whose `error` names the kind and whose `text` is the
observation the agent sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reasonact.agents.calculator import CalculatorError, calculate
from reasonact.agents.sandbox import SandboxConfig, run_python

_COLON = re.compile(r"^\s*`?([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*`?\s*$", re.S)  # name: input
_BRACKETS = re.compile(r"^\s*`?([A-Za-z_][\w-]*)\s*(?:\((.*)\)|\[(.*)\])\s*`?\s*$", re.S)  # name(input), name[input]


@dataclass(frozen=True)
class ToolResult:
    text: str  # what the agent observes
    error: str | None = None  # None, or the kind: tool_error, bad_arguments, unknown_function


Tool = Callable[[str], ToolResult]


def calculator_tool(expression: str) -> ToolResult:
    try:
        return ToolResult(calculate(expression))
    except CalculatorError as err:
        return ToolResult(f"error: {err}", "tool_error")


def python_tool(config: SandboxConfig | None = None, scratch: Path | None = None) -> Tool:
    """The sandboxed interpreter; `scratch` persists files between calls of one episode."""

    def run(code: str) -> ToolResult:
        if not code.strip():
            return ToolResult("error: python: expected code after `python:`", "bad_arguments")
        result = run_python(code.replace("\\n", "\n"), config, scratch)  # one-line LM output: \n escapes
        return ToolResult(result.observation(), None if result.ok else "tool_error")

    return run


def parse_call(text: str) -> tuple[str, str] | None:
    """`calculator: 3+4` / `calculator(3+4)` / `python[print(1)]` → (name, input); None if not a call."""
    if match := _COLON.match(text):
        return match.group(1).lower(), match.group(2)
    if match := _BRACKETS.match(text):
        return match.group(1).lower(), (match.group(2) if match.group(2) is not None else match.group(3)).strip()
    return None


def call_tool(tools: dict[str, Tool], text: str) -> tuple[str, ToolResult]:
    """(the call as understood, its result): malformed calls become error results."""
    parsed = parse_call(text)
    if parsed is None:
        return text, ToolResult(f"error: could not parse a tool call from {text!r}; write `name: input`", "unparseable")
    name, argument = parsed
    if name not in tools:
        return text, ToolResult(f"error: unknown tool {name!r}; available: {', '.join(tools)}", "unknown_function")
    return f"{name}: {argument}", tools[name](argument)
