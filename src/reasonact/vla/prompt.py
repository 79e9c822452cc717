"""Prompt + state → prefix token ids, for the three state representations of SPEC §2.2.

* ``text``: each state dim is discretised into `state_bins` bins over [-1, 1] and the bin numbers are
  written as text after the instruction ("pick the cube\\nState: 3 17 30;\\n"), as π0.5 / KI do;
* ``special``: one new token per (dim, bin), ids after the text vocabulary (`VLAConfig.special_state_offset`);
* ``continuous``: the state is not tokenised; the model projects it to one prefix token (`state_proj`).

π0 (`VLAConfig.prefix_state` None) keeps its state out of the prompt: it is a token of the expert's suffix.
Samples without a state (VLM co-training records: `has_state` False) get no state text or tokens.

Text tokenizers: `ByteTokenizer` (UTF-8 bytes, vocab 256) for the from-scratch sizes; the real Gemma 3
tokenizer (`reasonact.weights.load_gemma_tokenizer`) for `gemma270m`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from reasonact.checks import as_float_array
from reasonact.vla.config import VLAConfig


class TextTokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


class ByteTokenizer:
    """UTF-8 bytes as token ids (vocab 256): a real, lossless tokenizer with no files to load."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


def discretize_state(state: np.ndarray, bins: int) -> np.ndarray:
    """(b, d) in [-1, 1] → (b, d) int bin ids in [0, bins); values outside [-1, 1] land in the edge bins."""
    edges = np.linspace(-1.0, 1.0, bins + 1)[1:-1]
    return np.digitize(state, edges)


class PromptTokenizer:
    """Builds `Observation.tokens` / `token_mask` (right-padded to `max_prompt_tokens`)."""

    def __init__(self, config: VLAConfig, text: TextTokenizer | None = None) -> None:
        self.config = config
        self.text = text or ByteTokenizer()

    def __call__(
        self, prompts: Sequence[str], state: object, has_state: Sequence[bool] | None = None
    ) -> tuple[Tensor, Tensor]:
        """b prompts, state (b, state_dim), optionally which samples have a state (b,) → tokens (b, L) int64,
        mask (b, L) bool."""
        cfg = self.config
        if isinstance(prompts, str):
            raise ValueError("prompts: expected a sequence of strings (one per batch item), received one str")
        state_np = as_float_array(state, "state", (len(prompts), cfg.state_dim))
        bins = discretize_state(state_np, cfg.state_bins)
        tokens = torch.zeros(len(prompts), cfg.max_prompt_tokens, dtype=torch.int64)
        mask = torch.zeros(len(prompts), cfg.max_prompt_tokens, dtype=torch.bool)
        for i, prompt in enumerate(prompts):
            ids = self._ids(prompt, bins[i] if has_state is None or has_state[i] else None)
            if len(ids) > cfg.max_prompt_tokens:
                raise ValueError(
                    f"prompts[{i}]: prompt too long: expected at most max_prompt_tokens={cfg.max_prompt_tokens} "
                    f"tokens (state included), received {len(ids)} for {prompt[:40]!r}"
                )
            tokens[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
            mask[i, : len(ids)] = True
        return tokens, mask

    def _ids(self, prompt: str, bins: np.ndarray | None) -> list[int]:
        cfg = self.config
        if bins is not None and cfg.prefix_state == "text":
            return self.text.encode(f"{prompt}\nState: {' '.join(str(int(b)) for b in bins)};\n")
        ids = self.text.encode(prompt)
        if bins is not None and cfg.prefix_state == "special":
            ids = ids + [cfg.special_state_offset + d * cfg.state_bins + int(b) for d, b in enumerate(bins)]
        return ids
