"""The LM backend contract: sample `n` next steps for each of a batch of states.

Every backend (HF transformers, vLLM) implements `generate_texts(prompts, n, …)`; the MDP-level
`generate_steps(states, n, …)` renders states with the backend's few-shot `header` and calls it.
Generation stops at the step boundary; a prompt longer than the context window, an empty step or a
step cut by `max_new_tokens` comes back as a `Generation` with `finish` saying so, never an
exception, so a search records the failure in its tree and goes on.

Sampling is reproducible per (seed, prompt index, sample index): the token at step t is drawn by
inverse-CDF sampling with a uniform u_t taken from a generator seeded by that triple
(`row_uniforms`), so batched, per-path and cached generation give the same tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from reasonact.reasoning.mdp import STEP_BOUNDARY, State

Finish = Literal["stop", "eos", "length", "too_long"]


@dataclass(frozen=True)
class Generation:
    text: str  # the step, without the boundary
    token_ids: tuple[int, ...]  # generated tokens, boundary/eos included
    logprobs: tuple[float, ...]  # log π(token) at temperature 1, one per token
    finish: Finish  # stop: hit the boundary; eos: end of sequence; length: max_new_tokens; too_long: prompt

    @property
    def logprob(self) -> float:
        return float(sum(self.logprobs))

    @property
    def failure(self) -> str | None:
        """Why this generation is not a usable step (None when it is)."""
        if self.finish in ("length", "too_long"):
            return self.finish
        return "empty" if not self.text.strip() else None


def row_seed(seed: int, prompt: int, sample: int) -> int:
    return (seed * 1_000_003 + prompt * 10_007 + sample) % (2**63 - 1)


def row_uniforms(seed: int, prompt: int, sample: int, length: int) -> torch.Tensor:
    """u_1..u_length ~ U[0, 1) for one sampled sequence.  # (length,)"""
    generator = torch.Generator().manual_seed(row_seed(seed, prompt, sample))
    return torch.rand(length, generator=generator, dtype=torch.float64)


def pick_tokens(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float) -> torch.Tensor:
    """Inverse-CDF sampling from softmax(logits / T); greedy at T = 0.

    logits (r, V), uniforms (r,) → token ids (r,)"""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)  # (r, V)
    cdf = probs.cumsum(-1)  # (r, V)
    u = (uniforms.to(cdf) * cdf[:, -1]).unsqueeze(-1)  # (r, 1): scaled so rounding never overshoots
    return torch.searchsorted(cdf, u).squeeze(-1).clamp(max=logits.shape[-1] - 1)


class Backend(ABC):
    """A policy π(step | state) that samples steps."""

    header: str = ""  # few-shot text placed before every question
    max_context: int = 2048  # prompt + generated tokens the model accepts

    @abstractmethod
    def generate_texts(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int = 0,
        stop: str | None = STEP_BOUNDARY,
    ) -> list[list[Generation]]:
        """n samples per prompt → [prompt][sample]; stop=None generates exactly max_new_tokens."""

    def generate_steps(
        self,
        states: Sequence[State],
        n: int,
        max_new_tokens: int = 48,
        temperature: float = 1.0,
        seed: int = 0,
        stop: str | None = STEP_BOUNDARY,
    ) -> list[list[Generation]]:
        """n candidate next steps for every state → [state][sample]."""
        return self.generate_texts([s.prompt(self.header) for s in states], n, max_new_tokens, temperature, seed, stop)

    @staticmethod
    def check_request(prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float) -> None:
        if n < 1:
            raise ValueError(f"n: expected samples per prompt >= 1, received {n}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: expected >= 1, received {max_new_tokens}")
        if not temperature >= 0:
            raise ValueError(f"temperature: expected >= 0, received {temperature}")
        if isinstance(prompts, str):
            raise ValueError("prompts: expected a sequence of strings, received a single string")


def cut_at_stop(text: str, stop: str | None) -> tuple[str, bool]:
    """(text before the first stop string, whether it was found)."""
    if stop is None or stop not in text:
        return text, False
    return text[: text.index(stop)], True
