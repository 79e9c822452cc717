"""LM backends behind one contract (`Backend.generate_steps`): HF transformers, vLLM."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend, Generation, pick_tokens, row_uniforms
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.backends.kv_store import KVStore

__all__ = ["Backend", "Generation", "HFBackend", "KVStore", "pick_tokens", "row_uniforms"]
