"""Supervised fine-tuning of the step-writing policy (`reasoning/step_lm.py`) from scratch on
reference solutions: cross-entropy on the solution tokens only (the question is context):

    Question: Calculate 3 + 4 * 2 - 5.\\n3 + 8 - 5\\n11 - 5\\n6\\nAnswer: 6\\n<eos>

A few minutes of training gives a policy that is right often but not always: the regime where
verifiers and search matter. Training runs in a run directory (`reasonact.runs`) next to the
output: checkpoints every `checkpoint_every` steps, and a run interrupted and started again with
the same config resumes from the newest checkpoint and ends with the same weights as an
uninterrupted one (the batch of step t is drawn from a generator seeded by (seed, t), the learning
rate is a function of t). The result is a normal HF model directory (`HFBackend.from_pretrained`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reasonact.reasoning.mdp import render, solution_text
from reasonact.reasoning.step_lm import (
    POLICY_PRESETS,
    PolicySFTConfig,
    build_step_lm,
    char_tokenizer,
    find_policy,
    policy_key,
)
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run, to_jsonable
from reasonact.threads import torch_threads
from reasonact.training.schedule import ramp_times_cosine, set_lr
from reasonact.training.steps import optimizer_step
from reasonact.weights import cache_root


def sft_batches(config: PolicySFTConfig, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """All training sequences → input ids (N, s) and labels (N, s) with the question masked (-100).
    Refuses problems longer than `config.context`."""
    problems = make_task(config.family, config.difficulty).generate("train", config.problems, seed=config.seed)
    rows = []
    for p in problems:
        context = tokenizer(render(p))["input_ids"]
        target = tokenizer(solution_text(p.steps), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(context) + len(target) > config.context:
            raise ValueError(
                f"context: problem {p.uid} needs {len(context) + len(target)} tokens, the config allows "
                f"{config.context}; raise --policy.context"
            )
        rows.append((context, target))
    width = max(len(c) + len(t) for c, t in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, (context, target) in enumerate(rows):
        ids[i, : len(context) + len(target)] = torch.tensor(context + target)
        labels[i, len(context) : len(context) + len(target)] = torch.tensor(target)
    return ids, labels


def learning_rate(config: PolicySFTConfig, step: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to 0."""
    return ramp_times_cosine(step, config.steps, max(1, config.steps // 20), config.lr)


def train_policy(config: PolicySFTConfig, out: Path, progress: bool = False, stop_after: int | None = None) -> Path:
    """SFT from scratch in the run directory `<out>.run` (resumed if it exists); saves model +
    tokenizer + `train.json` (config, final loss) to `out`. `stop_after` ends the call after that
    many optimiser steps in total (an interruption, for tests), writing only the checkpoint."""
    with torch_threads(config.threads):
        return _train_policy(config, out, progress, stop_after)


def _train_policy(config: PolicySFTConfig, out: Path, progress: bool, stop_after: int | None) -> Path:
    from reasonact.atomic import atomic_directory

    run = Run.open(out.parent, f"{out.name}.run", config, resume=True)
    tokenizer = char_tokenizer()
    model = build_step_lm(config.hidden, config.layers, config.heads, len(tokenizer), config.seed, config.context)
    ids, labels = sft_batches(config, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    start, _ = run.restore(model, optimizer)
    model.train()
    loss = torch.tensor(float("nan"))
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    for step in range(start, end):
        set_lr(optimizer, learning_rate(config, step))
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        pick = torch.randint(0, len(ids), (config.batch,), generator=generator)
        batch_ids, batch_labels = ids[pick], labels[pick]  # (b, s)
        width = int((batch_ids != tokenizer.pad_token_id).sum(-1).max())
        loss = model(input_ids=batch_ids[:, :width], labels=batch_labels[:, :width]).loss
        optimizer_step(run, step, model, optimizer, loss, config.checkpoint_every, end, lr=learning_rate(config, step))
        if progress and step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f}")
    if end < config.steps:
        return run.path
    model.eval()
    final = run.metrics()[-1]["loss"] if run.metrics() else loss.item()
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "train.json").write_text(json.dumps({"config": to_jsonable(config), "final_loss": final}, indent=1))
    return out


def cached_policy(config: PolicySFTConfig, progress: bool = False) -> Path:
    """The trained policy for `config`: shipped with the package or cached (`find_policy`), else
    trained once (resumably) into the cache."""
    found = find_policy(config)
    if found is not None:
        return found
    out = cache_root() / "policies" / policy_key(config)
    train_policy(config, out, progress)
    return out


@dataclass(frozen=True)
class TrainPolicyConfig:
    policy: PolicySFTConfig = field(default_factory=PolicySFTConfig)  # model size, data and optimiser
    out: Path | None = None  # model directory; None: the cache (~/.cache/reasonact/policies/…)


TRAIN_PRESETS: dict[str, tuple[str, TrainPolicyConfig]] = {
    name: (f"SFT the {name} step-writing policy from scratch.", TrainPolicyConfig(policy=config))
    for name, config in POLICY_PRESETS.items()
}


def train_policy_command(config: TrainPolicyConfig) -> None:
    """`reasonact search train-policy`: train into the cache (or `out`), resuming an interrupted run."""
    path = (
        cached_policy(config.policy, progress=True)
        if config.out is None
        else train_policy(config.policy, config.out, progress=True)
    )
    print(f"policy → {path}")
