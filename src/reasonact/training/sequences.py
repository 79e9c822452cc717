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
    no_loss: tuple[tuple[int, int], ...] = ()  # character spans [a, b) of the completion kept as context, no loss


def encode(tokenizer, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs → input ids (N, s) and labels (N, s), right-padded with the tokenizer's pad id.

    A completion token overlapping a `no_loss` span stays in the input but gets label -100."""
    if not examples:
        raise ValueError("examples: expected at least one (prompt, completion) pair, received none")
    rows = []
    for i, ex in enumerate(examples):
        context = tokenizer(ex.prompt)["input_ids"]
        encoded = tokenizer(ex.completion, add_special_tokens=False, return_offsets_mapping=bool(ex.no_loss))
        target = encoded["input_ids"]
        trained = [
            not any(a < end and start < b for a, b in ex.no_loss) for start, end in encoded.get("offset_mapping", [])
        ] or [True] * len(target)
        target, trained = ([*target, tokenizer.eos_token_id], [*trained, True]) if ex.eos else (target, trained)
        if not target:
            raise ValueError(f"examples[{i}].completion: expected a non-empty completion, received {ex.completion!r}")
        if not any(trained):
            raise ValueError(f"examples[{i}].no_loss: covers the whole completion; nothing would be trained")
        rows.append((context, target, trained))
    width = max(len(c) + len(t) for c, t, _ in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)  # (N, s)
    labels = torch.full((len(rows), width), IGNORE)  # (N, s)
    for i, (context, target, trained) in enumerate(rows):
        ids[i, : len(context) + len(target)] = torch.tensor(context + target)
        labels[i, len(context) : len(context) + len(target)] = torch.tensor(
            [t if keep else IGNORE for t, keep in zip(target, trained, strict=True)]
        )
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


def shared_prompt_logprobs(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    rows: Sequence[int],
    completions: Sequence[Sequence[int]],
    pad_id: int,
    buckets: int = 4,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π_T(token | prompt, earlier tokens) for every completion token, each distinct prompt run once;
    π_T = softmax(logits / T), the distribution a sampler at temperature T draws from.

    GRPO's G samples of a question share its prompt: the prompts (left-padded, q rows) go through
    the model once, their KV is copied to the rows that continue them (`rows[i]`: the prompt of
    completion i), and the completions run on that cache in `buckets` batches of similar length
    (right-padded to their own longest, not the batch's). The numbers are those of one forward
    over each [prompt | completion] (tested); the prompt's compute is divided by G, and only
    completion positions reach the LM head (TRL's `logits_to_keep`). Log-softmax is taken as
    logit − logsumexp, never as a (b, c, V) copy. → logps (b, c) (0 on padding), mask (b, c)"""
    from transformers import DynamicCache

    if not prompts or len(rows) != len(completions) or not completions:
        raise ValueError(f"rows, completions: expected equal non-zero counts, got {len(rows)}, {len(completions)}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0 (log-probs of softmax(logits / T)), received {temperature}")
    p, c = max(map(len, prompts)), max(map(len, completions))
    prompt_ids = torch.full((len(prompts), p), pad_id)  # (q, p) left-padded
    prompt_mask = torch.zeros(len(prompts), p, dtype=torch.long)  # (q, p)
    for i, ids in enumerate(prompts):
        prompt_ids[i, p - len(ids) :], prompt_mask[i, p - len(ids) :] = torch.tensor(ids), 1
    cache = DynamicCache(config=model.config)
    first = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0),
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits  # (q, 1, V): scores each completion's first token
    order = sorted(range(len(completions)), key=lambda i: len(completions[i]))
    parts = []
    for part in split(order, buckets):
        width = len(completions[part[-1]])
        ids = torch.full((len(part), width), pad_id)  # (n, w) right-padded
        mask = torch.zeros(len(part), width, dtype=torch.long)  # (n, w)
        for j, i in enumerate(part):
            ids[j, : len(completions[i])], mask[j, : len(completions[i])] = torch.tensor(completions[i]), 1
        index = torch.as_tensor([rows[i] for i in part])  # (n,)
        shared = DynamicCache(config=model.config)
        for layer, source in zip(shared.layers, cache.layers, strict=True):
            layer.update(source.keys[index], source.values[index])
        rest = model(
            input_ids=ids,
            attention_mask=torch.cat([prompt_mask[index], mask], 1),  # (n, p + w)
            position_ids=prompt_mask.sum(-1)[index, None] + torch.arange(width),  # (n, w)
            cache=shared,
            use_cache=True,
        ).logits[:, :-1]  # (n, w-1, V): position t scores token t + 1
        logits = torch.cat([first[index], rest], 1).float() / temperature  # (n, w, V)
        logps = logits.gather(-1, ids[..., None])[..., 0] - torch.logsumexp(logits, -1)  # (n, w)
        parts.append(torch.nn.functional.pad(logps * mask, (0, c - width)))  # (n, c)
    logps = torch.cat(parts)[torch.argsort(torch.as_tensor(order))]  # (b, c) back in the rows' order
    check_finite(logps.detach(), "model log-probabilities")
    mask = torch.zeros(len(completions), c, dtype=torch.bool)  # (b, c)
    for i, tokens in enumerate(completions):
        mask[i, : len(tokens)] = True
    return logps, mask


def split(items: list[int], parts: int) -> list[list[int]]:
    """`items` cut into at most `parts` consecutive runs of near-equal size."""
    size = -(-len(items) // max(1, parts))
    return [items[k : k + size] for k in range(0, len(items), size)]


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
