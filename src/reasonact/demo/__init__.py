"""`reasonact demo` (`make demo`): the end-to-end job on the embedded default, both halves.

Writes `runs/<name>/report.md` with figures and `report.json`. Each section is one module with a
`section(config, run) -> (markdown, numbers)` function: FAST action tokens (`fast`), a tiny
knowledge-insulated VLA trained beside π0 (`vla`), the shipped VLA and BC policies acting closed loop
(`closed_loop`), and test-time search (`search`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path

from reasonact.atomic import atomic_write_bytes, atomic_write_json
from reasonact.demo.config import ActingDemo, ClosedLoopDemo, DemoConfig
from reasonact.runs import Run

SECTIONS = ("fast", "vla", "closed_loop", "search")

__all__ = ["SECTIONS", "ActingDemo", "ClosedLoopDemo", "DemoConfig", "main"]


def _section(name: str) -> Callable:
    if name not in SECTIONS:
        raise ValueError(f"sections: expected names from {SECTIONS}, received {name!r}")
    return import_module(f"reasonact.demo.{name}").section


def main(config: DemoConfig) -> Path:
    """Run the configured demo sections and write report.md / report.json under `runs/<name>/`."""
    sections = [_section(name) for name in config.sections]  # refuse unknown names before any work
    run = Run.open(config.root, config.name, config, overwrite=True)
    parts, results = ["# reasonact demo\n"], {}
    for name, section in zip(config.sections, sections, strict=True):
        text, numbers = section(config, run)
        parts.append(text)
        results[name] = numbers
        atomic_write_bytes(run.path / "report.md", "\n".join(parts).encode())  # partial report after each section
        atomic_write_json(run.path / "report.json", results)
    print(f"report: {run.path / 'report.md'}")
    return run.path / "report.md"
