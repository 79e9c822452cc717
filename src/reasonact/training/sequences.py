"""Prompt–completion sequences shared by the reasoning trainers (SFT, DPO, GRPO, STaR).

Every trainer sees text as (prompt, completion) pairs, the format TRL's trainers use too: the
prompt is context, the loss is on the completion's tokens only. `encode` turns pairs into
right-padded ids with labels (-100 on prompt and padding); `completion_logprobs` gives
Σ log π(completion | prompt) per row, the quantity DPO and GRPO are written in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from reasonact.checks import check_finite

IGNORE = -100  # label of positions outside the completion


@dataclass(frozen=True)
class Example:
    prompt: str  # context, e.g. "Question: Calculate 3 + 4.\n"
    completion: str  # the text trained on, e.g. "7\nAnswer: 7\n"
    eos: bool = True  # append the end-of-sequence token (whole solutions); False for single steps


def encode(tokenizer, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs → input ids (N, s) and labels (N, s), right-padded with the tokenizer's pad id."""
    if not examples:
        raise ValueError("examples: expected at least one (prompt, completion) pair, received none")
    rows = []
    for i, ex in enumerate(examples):
        context = tokenizer(ex.prompt)["input_ids"]
        target = tokenizer(ex.completion, add_special_tokens=False)["input_ids"]
        target = [*target, tokenizer.eos_token_id] if ex.eos else target
        if not target:
            raise ValueError(f"examples[{i}].completion: expected a non-empty completion, received {ex.completion!r}")
        rows.append((context, target))
    width = max(len(c) + len(t) for c, t in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)  # (N, s)
    labels = torch.full((len(rows), width), IGNORE)  # (N, s)
    for i, (context, target) in enumerate(rows):
        ids[i, : len(context) + len(target)] = torch.tensor(context + target)
        labels[i, len(context) : len(context) + len(target)] = torch.tensor(target)
    return ids, labels


def trim(ids: torch.Tensor, labels: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the all-padding columns on the right of a batch.  # (b, s) → (b, s')"""
    width = int((ids != pad_id).sum(-1).max())
    return ids[:, :width], labels[:, :width]


def token_logprobs(
    model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(token_t | tokens_<t) at every completion position → (logps (b, s-1), mask (b, s-1)).

    ids, labels (b, s); position t of the output scores label t+1 (the usual causal shift)."""
    attention = (ids != model.config.pad_token_id).long()  # (b, s): right padding is masked
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()  # (b, s-1, V)
    target = labels[:, 1:]  # (b, s-1)
    mask = target != IGNORE
    logps = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]  # (b, s-1)
    check_finite(logps.detach(), "model log-probabilities")
    return logps * mask, mask


def completion_logprobs(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ log π(completion | prompt) per row.  # (b, s) → (b,)"""
    logps, _ = token_logprobs(model, ids, labels)
    return logps.sum(-1)


def resolve_policy(init: str, family: str) -> Path:
    """A policy directory from a preset name ("tiny", "small": the SFT policies of
    `reasonact.reasoning.step_lm`, shipped or trained once by `training.policy_sft`) or a model directory."""
    from reasonact.reasoning.step_lm import POLICY_PRESETS
    from reasonact.training.policy_sft import cached_policy

    if init in POLICY_PRESETS:
        return cached_policy(dataclasses.replace(POLICY_PRESETS[init], family=family))
    if not (Path(init) / "config.json").exists():
        raise ValueError(f"init: expected one of {sorted(POLICY_PRESETS)} or a model directory, received {init!r}")
    return Path(init)


def load_policy(path: str | Path) -> tuple[torch.nn.Module, object]:
    """(model, tokenizer) from a model directory, in float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def save_policy(model: torch.nn.Module, tokenizer, out: str | Path) -> Path:
    """A normal HF model directory (model + tokenizer), written atomically."""
    from reasonact.atomic import atomic_directory

    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out)
