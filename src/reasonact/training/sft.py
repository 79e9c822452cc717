"""Supervised fine-tuning on (prompt, completion) pairs: cross-entropy on the completion only.

The trainer of shortcut and journey long thoughts (O1-Journey §5) and of STaR's kept rationales.
Ours rather than TRL's `SFTTrainer`: the same loss (TRL's `completion_only_loss`), but on the run
layer (safetensors checkpoints, exact resume) and fed by `Example`s; `docs/training.md` compares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reasonact.training.run_loop import OptimConfig, fit, open_training_run
from reasonact.training.sequences import Example, encode, load_policy, resolve_policy, save_policy, trim


@dataclass(frozen=True)
class SFTConfig:
    family: str = "arithmetic"  # task family; with a preset `init`, picks the policy trained on it
    init: str = "tiny"  # starting policy: a preset of reasonact.reasoning.step_lm or a model directory
    batch: int = 32  # sequences per step, drawn with replacement (seeded by the step number)
    seed: int = 0  # batch order
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=200, lr=1e-3))  # optimiser, schedule
    root: Path = Path("runs")  # parent of the run directory
    name: str = "sft"  # run directory name
    resume: bool = True  # continue an interrupted run with the same config and data


def batch_indices(seed: int, step: int, n: int, batch: int) -> torch.Tensor:
    """Rows of step `step`: a function of (seed, step) only, so a resumed run draws the same.  # (batch,)"""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randint(0, n, (batch,), generator=generator)


def train_sft(config: SFTConfig, examples: Sequence[Example], progress: bool = False) -> Path:
    """Fine-tune `config.init` on `examples` → the trained policy directory (`<run>/policy`)."""
    run, finished = open_training_run(config, [dataclasses.asdict(e) for e in examples])
    if finished is not None:
        return finished
    model, tokenizer = load_policy(resolve_policy(config.init, config.family))
    ids, labels = encode(tokenizer, examples)  # (N, s)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        pick = batch_indices(config.seed, step, len(ids), config.batch)
        batch_ids, batch_labels = trim(ids[pick], labels[pick], tokenizer.pad_token_id)  # (b, s)
        return model(input_ids=batch_ids, labels=batch_labels).loss, {}

    fit(run, model, config.optim, loss_fn, progress=progress)
    return save_policy(model, tokenizer, run.path / "policy")
