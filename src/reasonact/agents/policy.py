"""The agent's policy LM behind one small interface: prompts in, one line of text out per prompt.

`BackendLM` puts any reasoning backend (`reasonact.reasoning.backends`: HF transformers, the real
Gemma 3 270M, the tiny char-level policies) behind it, generating up to the end of the line;
`ScriptedLM` wraps a plain function for plumbing tests and rule-based baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from reasonact.reasoning.backends.base import Backend


class AgentLM(Protocol):
    name: str

    def complete(self, prompts: Sequence[str], max_new_tokens: int, seed: int) -> list[str]:
        """One completion (a single line, without the newline) per prompt."""


@dataclass
class BackendLM:
    backend: Backend  # any reasoning backend
    temperature: float = 0.0  # 0 = greedy
    name: str = "backend"

    def complete(self, prompts: Sequence[str], max_new_tokens: int, seed: int) -> list[str]:
        generations = self.backend.generate_texts(list(prompts), 1, max_new_tokens, self.temperature, seed, stop="\n")
        return [g[0].text.strip() for g in generations]  # a too-long prompt comes back empty: a malformed call


@dataclass
class ScriptedLM:
    respond: Callable[[str], str]  # prompt → completion
    name: str = "scripted"

    def complete(self, prompts: Sequence[str], max_new_tokens: int, seed: int) -> list[str]:
        return [self.respond(p).split("\n")[0].strip() for p in prompts]


def gemma_lm(temperature: float = 0.0) -> BackendLM:
    """The real pretrained Gemma 3 270M (base, no few-shot header: the prompts carry their own examples)."""
    from reasonact.reasoning.backends.gemma import gemma_backend

    return BackendLM(gemma_backend(shots=0, threads=1), temperature, name="gemma3-270m")
