"""`reasonact vla bench`: one command, two benchmarks against LeRobot's pi05 at the same dims —
inference latency (`benchmarks/vla_inference.py`) or, with `--train`, training throughput
(`benchmarks/vla_train.py`). This module only dispatches, so neither benchmark imports the other's runner."""

from __future__ import annotations

from benchmarks.vla_inference import PRESETS, BenchConfig
from benchmarks.vla_inference import run as run_inference
from benchmarks.vla_train import run as run_train


def run(config: BenchConfig) -> dict:
    """The training bench when `config.train`, else the inference bench; each writes `config.out`."""
    return run_train(config) if config.train else run_inference(config)


__all__ = ["PRESETS", "BenchConfig", "run"]
