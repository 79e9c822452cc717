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

from reasonact.checks import check_finite
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


SAMPLING_BLOCK = 1024  # vocabulary entries per block of the two-level inverse CDF
SAMPLING_CHUNK = 16 * SAMPLING_BLOCK  # vocabulary entries exponentiated per pass: (r, 16k) float32 stays in cache


def _shifted_exp(logits: torch.Tensor, top: torch.Tensor, temperature: float) -> torch.Tensor:
    """exp(logits / T − top) in one fresh float32 tensor, every pass after the copy in place.

    logits (r, k), top (r, 1) → (r, k)"""
    weights = logits.to(torch.float32, copy=True)
    if temperature != 1:
        weights.div_(temperature)
    return weights.sub_(top).exp_()


def _block_masses(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each block's mass Σ exp(logits / T − max), exponentiating `SAMPLING_CHUNK` entries at a time, so the
    (r, V) float32 weights are never written out: at Gemma's 262k vocabulary and 32 rows, their fp32 copy
    and the passes over it were 11% of a profiled long-prefix round.

    logits (r, V) → (masses (r, B) float32, row maxima of logits / T (r, 1) float32)"""
    rows, vocab = logits.shape
    top = logits.amax(-1, keepdim=True).float()  # (r, 1): max(l) / T is max(l / T), rounding being monotone
    if temperature != 1:
        top = top / temperature
    masses = torch.empty(rows, -(-vocab // SAMPLING_BLOCK), dtype=torch.float32, device=logits.device)
    for start in range(0, vocab, SAMPLING_CHUNK):
        weights = _shifted_exp(logits[:, start : start + SAMPLING_CHUNK], top, temperature)  # (r, c)
        if weights.shape[1] % SAMPLING_BLOCK:  # (a zero pad would still copy)
            weights = torch.nn.functional.pad(weights, (0, -weights.shape[1] % SAMPLING_BLOCK))  # zero-weight tail
        first = start // SAMPLING_BLOCK
        masses[:, first : first + weights.shape[1] // SAMPLING_BLOCK] = weights.view(rows, -1, SAMPLING_BLOCK).sum(-1)
    return masses, top


def _inverse_cdf(
    logits: torch.Tensor, masses: torch.Tensor, top: torch.Tensor, uniforms: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-level draw (see `pick_tokens`) → (token ids (r,), each row's total weight (r,) float64).

    logits (r, V), masses (r, B) and top (r, 1) from `_block_masses`, uniforms (r,)"""
    vocab = logits.shape[1]
    cdf = masses.double().cumsum(-1)  # (r, B)
    u = uniforms.to(cdf) * cdf[:, -1]  # (r,): scaled so rounding never overshoots
    block = torch.searchsorted(cdf, u[:, None]).squeeze(-1).clamp(max=cdf.shape[1] - 1)  # (r,)
    before = torch.where(block > 0, cdf.gather(1, (block - 1).clamp(min=0)[:, None])[:, 0], 0.0)  # (r,)
    columns = block[:, None] * SAMPLING_BLOCK + torch.arange(SAMPLING_BLOCK, device=logits.device)  # (r, k)
    weights = _shifted_exp(logits.gather(1, columns.clamp(max=vocab - 1)), top, temperature)  # (r, k)
    inner = weights.masked_fill_(columns >= vocab, 0.0).double().cumsum(-1)  # (r, k); past the vocabulary: 0
    target = torch.minimum(u - before, inner[:, -1])  # (r,) never past the block's own total
    within = torch.searchsorted(inner, target[:, None]).squeeze(-1)  # (r,)
    return (block * SAMPLING_BLOCK + within).clamp(max=vocab - 1), cdf[:, -1]


def pick_tokens(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float) -> torch.Tensor:
    """Inverse-CDF sampling from softmax(logits / T); greedy at T = 0.

    Two-level, because a flat float64 softmax + cumsum over a 262k vocabulary cost more than the
    model on this CPU: u picks a block of `SAMPLING_BLOCK` tokens by the blocks' cumulative mass,
    then a token inside the block (cumulative sums in float64; one flat CDF's draw up to rounding).

    logits (r, V), uniforms (r,) → token ids (r,)"""
    if temperature <= 0:
        return logits.argmax(-1)
    return _inverse_cdf(logits, *_block_masses(logits, temperature), uniforms, temperature)[0]


def sample_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`pick_tokens` and `token_logprobs` together (the same tokens). At T = 1 the log-prob reuses
    the draw's maximum and normaliser: one pass over the vocabulary instead of two (a third of a
    Gemma 3 decode step on this CPU went to these passes, measured).

    logits (r, V), uniforms (r,) → (token ids (r,), log-probs at temperature 1 (r,))"""
    if temperature != 1:
        tokens = pick_tokens(logits, uniforms, temperature)
        return tokens, token_logprobs(logits, tokens)
    masses, top = _block_masses(logits, temperature)
    tokens, total = _inverse_cdf(logits, masses, top, uniforms, temperature)
    chosen = logits.gather(1, tokens[:, None])[:, 0].double()  # (r,)
    logprobs = (chosen - top[:, 0].double() - total.log()).float()  # (r,)
    check_finite(logprobs, "logits")  # NaN or inf logits poison the maximum or the normaliser
    return tokens, logprobs


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] at temperature 1; raises on NaN/inf logits (they poison the
    normaliser, so checking it costs (r,) instead of (r, V)).

    logits (r, V), tokens (r,) → (r,)"""
    logits = logits.float()
    normaliser = torch.logsumexp(logits, -1)  # (r,)
    check_finite(normaliser, "logits")
    return logits.gather(1, tokens[:, None])[:, 0] - normaliser


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

    def weights_changed(self) -> None:
        """Call after the policy's weights were updated (a training step): anything computed
        from the old weights, such as a prefix-KV store, is stale and must go."""
        store = getattr(self, "store", None)
        if store is not None:
            store.clear()

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
