"""The agent's policy LM behind one small interface: prompts in, one line of text out per prompt.

`BackendLM` puts any reasoning backend (`reasonact.reasoning.backends`: HF transformers, the real
Gemma 3 270M, the tiny char-level policies) behind it, generating up to the end of the line;
`ScriptedLM` wraps a plain function for plumbing tests and rule-based baselines.

For fine-tuning (`agents.finetune`) a `BackendLM` can see only the last `window` characters of
each prompt (a small LM's context) and record every `Call` (the prompt it saw, the generated
token ids and their log-probs): GRPO's π_old and the tokens it trains on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from reasonact.reasoning.backends.base import Backend, Generation


class AgentLM(Protocol):
    name: str

    def complete(self, prompts: Sequence[str], max_new_tokens: int, seed: int) -> list[str]:
        """One completion (a single line, without the newline) per prompt."""


@dataclass(frozen=True)
class Call:
    prompt: str  # the prompt as the LM saw it (after the window cut)
    generation: Generation  # token ids (stop token included) and log π(token) at temperature 1


def clip_prompt(prompt: str, window: int | None) -> str:
    """The last `window` characters of `prompt`, starting at a line (None: the whole prompt)."""
    if window is None or len(prompt) <= window:
        return prompt
    start = len(prompt) - window
    line = prompt.find("\n", start - 1) + 1  # the first line starting at or after `start`
    return prompt[line:] if 0 < line < len(prompt) else prompt[start:]


@dataclass
class BackendLM:
    backend: Backend  # any reasoning backend
    temperature: float = 0.0  # 0 = greedy
    name: str = "backend"
    window: int | None = None  # characters of each prompt the LM sees (the end; None: all)
    seed_offset: int = 0  # added to every call's seed: distinct samples of the same episode seed
    calls: list[Call] | None = None  # when a list, every call is appended to it (GRPO rollouts)

    def complete(self, prompts: Sequence[str], max_new_tokens: int, seed: int) -> list[str]:
        seen = [clip_prompt(p, self.window) for p in prompts]
        generations = self.backend.generate_texts(
            seen, 1, max_new_tokens, self.temperature, seed + self.seed_offset, stop="\n"
        )
        if self.calls is not None:
            self.calls += [Call(p, g[0]) for p, g in zip(seen, generations, strict=True)]
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
