"""Training a process reward model (`reasoning/prm/model.py`) on step-labelled rows (TRL's
step-wise format, `reasoning/prm/data.py`): the step classifier, the TD value function or the
outcome reward model, from the step-writing policy's body.

Runs in `runs/<name>/` (`reasonact.runs`): checkpoints every `checkpoint_every` steps and exact
resume (the batch of step t is drawn from a generator seeded by (seed, t)); the trained PRM is
written as a directory `LearnedScorer` loads (`<run>/prm/`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from reasonact.reasoning.prm.data import PRMRow, problem_of_row, read_rows
from reasonact.reasoning.prm.model import PRM, Kind, batch, encode
from reasonact.reasoning.tasks.base import answer_of
from reasonact.runs import Run
from reasonact.threads import torch_threads
from reasonact.training.steps import optimizer_step


@dataclass(frozen=True)
class PRMTrainConfig:
    data: Path = Path("runs/prm_labels_tiny/train_checker.jsonl")  # labelled rows (JSONL, TRL step-wise format)
    kind: Kind = "classifier"  # classifier (per-step CE) | value (TD(0)) | orm (outcome CE)
    labels: Literal["checker", "mc_hard", "mc_soft"] = "checker"  # step checker, or Math-Shepherd MC hard/soft
    policy: str = "tiny"  # body initialisation: a policy preset (trained at family/difficulty) or a model dir
    family: str = "arithmetic"  # the preset policy's family
    difficulty: str = "easy"  # the preset policy's difficulty
    gamma: float = 1.0  # γ of the TD target r + γ·V(s') (value kind)
    steps: int = 300  # optimiser steps
    batch: int = 32  # solutions per step
    lr: float = 1e-3  # AdamW learning rate (constant after a 5% warm-up)
    seed: int = 0  # head init, data order
    checkpoint_every: int = 100  # optimiser steps between checkpoints
    threads: int | None = 1  # torch threads while training (1: fastest for tiny models on a busy CPU)
    root: Path = Path("runs")  # parent of the run directory
    name: str = "prm_tiny"  # run directory name; the PRM lands in <root>/<name>/prm

    def __post_init__(self) -> None:
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma: expected a discount in [0, 1], received {self.gamma}")
        for name in ("steps", "batch", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")


def policy_dir(policy: str, family: str, difficulty: str) -> Path:
    from reasonact.reasoning.step_lm import POLICY_PRESETS
    from reasonact.training.policy_sft import cached_policy

    if policy in POLICY_PRESETS:
        return cached_policy(dataclasses.replace(POLICY_PRESETS[policy], family=family, difficulty=difficulty))
    if not Path(policy).is_dir():
        raise ValueError(f"policy: expected one of {sorted(POLICY_PRESETS)} or a model directory, received {policy!r}")
    return Path(policy)


def outcome(row: PRMRow, labels: str) -> float:
    """1 when the solution ends with an answer its last label calls right (the answer step's
    label is the outcome under every labelling)."""
    last = step_targets(row, labels)[-1]
    return float(answer_of(row["completions"][-1]) is not None and last > 0.5)


def step_targets(row: PRMRow, labels: str) -> list[float]:
    """Per-step targets: checker labels, or Monte Carlo fractions (soft) / any-success (hard)."""
    if labels == "checker":
        return [float(y) for y in row["labels"]]
    if "mc_labels" not in row:
        raise ValueError(f"labels: {labels!r} needs rows with mc_labels (reasonact prm label), row {row.get('uid')}")
    values = [float(y) for y in row["mc_labels"]]
    return [float(y > 0) for y in values] if labels == "mc_hard" else values


def prm_loss(prm: PRM, logits: torch.Tensor, ends: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor,
             outcomes: torch.Tensor, gamma: float) -> torch.Tensor:  # fmt: skip
    """logits (b, s); ends, valid, targets (b, T) per step (padded); outcomes (b,) → scalar loss."""
    at_ends = logits.gather(1, ends)  # (b, T)
    if prm.kind == "classifier":
        per_step = F.binary_cross_entropy_with_logits(at_ends, targets, reduction="none")  # (b, T)
        return (per_step * valid).sum() / valid.sum()
    last = valid.sum(1).long() - 1  # (b,) index of the final step
    if prm.kind == "orm":
        return F.binary_cross_entropy_with_logits(at_ends.gather(1, last[:, None])[:, 0], outcomes)
    value = torch.sigmoid(at_ends)  # (b, T) V(s_t)
    following = torch.cat([value[:, 1:], torch.zeros_like(value[:, :1])], 1).detach()  # (b, T) V(s_{t+1})
    is_last = torch.zeros_like(value).scatter(1, last[:, None], 1.0)  # (b, T)
    target = is_last * outcomes[:, None] + (1 - is_last) * gamma * following  # r_t + γ·V(s_{t+1})
    return (((value - target) ** 2) * valid).sum() / valid.sum()


def train_prm(config: PRMTrainConfig, progress: bool = False, stop_after: int | None = None) -> Path:
    """Train (or resume) the PRM of `config` → its directory. `stop_after` ends the call after that
    many optimiser steps in total (an interruption, for tests), writing only the checkpoint."""
    with torch_threads(config.threads):
        return _train_prm(config, progress, stop_after)


def _train_prm(config: PRMTrainConfig, progress: bool, stop_after: int | None) -> Path:
    rows = read_rows(config.data)
    source = policy_dir(config.policy, config.family, config.difficulty)
    torch.manual_seed(config.seed)
    prm = PRM.from_policy(source, config.kind)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    context = int(prm.body.config.max_position_embeddings)
    encoded = [encode(tokenizer, problem_of_row(r), r["completions"], context) for r in rows]
    targets = [step_targets(r, config.labels) for r in rows]
    outcomes = torch.tensor([outcome(r, config.labels) for r in rows])  # (N,)
    run = Run.open(config.root, config.name, config, resume=True)
    optimizer = torch.optim.AdamW(prm.parameters(), lr=config.lr, weight_decay=0.01)
    start, _ = run.restore(prm, optimizer)
    prm.train()
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    for step in range(start, end):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / max(1, config.steps // 20))
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        pick = torch.randint(0, len(rows), (config.batch,), generator=generator).tolist()
        ids, mask = batch([encoded[i] for i in pick], tokenizer.pad_token_id)  # (b, s)
        width = max(len(encoded[i][1]) for i in pick)
        ends = torch.zeros(len(pick), width, dtype=torch.long)  # (b, T)
        valid = torch.zeros(len(pick), width)  # (b, T)
        step_labels = torch.zeros(len(pick), width)  # (b, T)
        for j, i in enumerate(pick):
            n = len(encoded[i][1])
            ends[j, :n], valid[j, :n], step_labels[j, :n] = torch.tensor(encoded[i][1]), 1.0, torch.tensor(targets[i])
        loss = prm_loss(prm, prm(ids, mask), ends, valid, step_labels, outcomes[pick], config.gamma)
        optimizer_step(run, step, prm, optimizer, loss, config.checkpoint_every, end)
        if progress and step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f}")
    if end < config.steps:
        return run.path
    prm.eval()
    out = run.path / "prm"
    prm.save(out, tokenizer, {"data": str(config.data), "labels": config.labels, "gamma": config.gamma})
    run.plot_metrics(["loss"])
    return out


KINDS: dict[str, tuple[str, PRMTrainConfig]] = {
    "": ("Step classifier on checker labels from the {size} policy's body.", PRMTrainConfig()),
    "-mc": (
        "Step classifier on Math-Shepherd hard MC labels (no checker in training).",
        PRMTrainConfig(labels="mc_hard"),
    ),
    "-value": ("TD(0) value function on the outcomes (γ = 1).", PRMTrainConfig(kind="value")),
    "-orm": ("Outcome reward model (final step only).", PRMTrainConfig(kind="orm")),
}
SIZES = {"tiny": "easy", "small": "default"}  # policy preset → the difficulty its labels come from
TRAIN_PRESETS: dict[str, tuple[str, PRMTrainConfig]] = {
    f"{size}{suffix}": (
        text.format(size=size),
        dataclasses.replace(
            config,
            data=Path(f"runs/prm_labels_{size}/train.jsonl"),
            policy=size,
            difficulty=difficulty,
            name=f"prm_{size}{suffix.replace('-', '_')}",
        ),
    )
    for size, difficulty in SIZES.items()
    for suffix, (text, config) in KINDS.items()
}


def train_command(config: PRMTrainConfig) -> None:
    """`reasonact prm train`: train (or resume) a PRM."""
    print(f"PRM → {train_prm(config, progress=True)}")
