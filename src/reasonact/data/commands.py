"""CLI verbs of `reasonact data`: collect (expert demonstrations) and vlm (co-training data)."""

from __future__ import annotations

import json

from reasonact.data.collect import PRESETS as COLLECT_PRESETS
from reasonact.data.collect import CollectConfig
from reasonact.data.vlm import PRESETS as VLM_PRESETS
from reasonact.data.vlm import VlmConfig

__all__ = ["COLLECT_PRESETS", "VLM_PRESETS", "collect", "vlm"]


def collect(config: CollectConfig) -> dict:
    """Collect scripted-expert demonstrations into a LeRobot v3.0 dataset (resumes an existing one)."""
    from reasonact.data.collect import collect as run

    report = run(config)
    print(json.dumps(report, indent=2))
    print(f"→ {config.out}")
    return report


def vlm(config: VlmConfig) -> dict:
    """Generate captions / VQA / boxes / planning records from simulator state."""
    from reasonact.data.vlm import generate

    report = generate(config)
    print(json.dumps(report, indent=2))
    return report
