"""Direct preference optimisation (Rafailov et al. 2023, eq. 7) at sequence or step level.

    L = −log σ(β [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))])

Sequence level: x = the question, y_w / y_l = a correct and a wrong whole solution. Step level
(Step-DPO, Lai et al. 2024): x = the question + the shared steps so far, y_w / y_l = two sibling
steps of a search tree, one the checker (or PRM) accepts and one it rejects; the same loss,
credit assigned to the step where the paths part. Pairs come from `dpo_pairs`. The reference
log-probs are computed once with the frozen starting policy. Degenerate pairs (identical or
empty completions) are dropped and counted; a set with none left is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reasonact.training.run_loop import OptimConfig, fit, open_training_run
from reasonact.training.sequences import (
    Example,
    completion_logprobs,
    encode,
    load_policy,
    resolve_policy,
    save_policy,
    trim,
)
from reasonact.training.sft import batch_indices


@dataclass(frozen=True)
class Preference:
    prompt: str  # x: shared context (question, or question + steps so far)
    chosen: str  # y_w: preferred completion
    rejected: str  # y_l: dispreferred completion
    eos: bool = True  # completions end the sequence (whole solutions); False for single steps


@dataclass(frozen=True)
class DPOConfig:
    family: str = "arithmetic"  # task family; with a preset `init`, picks the policy trained on it
    init: str = "tiny"  # policy to improve and reference π_ref: a preset name or a model directory
    beta: float = 0.1  # β: strength of the implicit KL to π_ref
    batch: int = 16  # pairs per step (drawn with replacement, seeded by the step)
    seed: int = 0  # batch order
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=100, lr=2e-4))  # optimiser, schedule
    root: Path = Path("runs")  # parent of the run directory
    name: str = "dpo"  # run directory name
    resume: bool = True  # continue an interrupted run with the same config and pairs

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta: expected > 0, received {self.beta}")


def clean_pairs(pairs: Sequence[Preference]) -> tuple[list[Preference], int]:
    """(usable pairs, how many were dropped: empty or identical chosen/rejected)."""
    kept = [p for p in pairs if p.chosen.strip() and p.rejected.strip() and p.chosen != p.rejected]
    return kept, len(pairs) - len(kept)


def dpo_loss(
    policy_w: torch.Tensor, policy_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 7 over a batch of pairs; all inputs are Σ log-probs per completion.  # (b,) each → ()"""
    margin = beta * ((policy_w - ref_w) - (policy_l - ref_l))  # (b,)
    loss = -torch.nn.functional.logsigmoid(margin).mean()
    return loss, {"reward_margin": margin.mean().item(), "pair_accuracy": (margin > 0).float().mean().item()}


def train_dpo(config: DPOConfig, pairs: Sequence[Preference], progress: bool = False) -> Path:
    """Improve `config.init` on preference pairs → the trained policy directory (`<run>/policy`)."""
    pairs, dropped = clean_pairs(pairs)
    if not pairs:
        raise ValueError(f"pairs: no usable preference pair ({dropped} dropped as empty or identical)")
    run, finished = open_training_run(config, [dataclasses.asdict(p) for p in pairs])
    if finished is not None:
        return finished
    model, tokenizer = load_policy(resolve_policy(config.init, config.family))
    ids_w, labels_w = encode(tokenizer, [Example(p.prompt, p.chosen, p.eos) for p in pairs])  # (N, s)
    ids_l, labels_l = encode(tokenizer, [Example(p.prompt, p.rejected, p.eos) for p in pairs])  # (N, s)
    ref_w = reference_logprobs(model, ids_w, labels_w, tokenizer.pad_token_id)  # (N,)
    ref_l = reference_logprobs(model, ids_l, labels_l, tokenizer.pad_token_id)  # (N,)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        pick = batch_indices(config.seed, step, len(pairs), config.batch)
        policy_w = completion_logprobs(model, *trim(ids_w[pick], labels_w[pick], tokenizer.pad_token_id))  # (b,)
        policy_l = completion_logprobs(model, *trim(ids_l[pick], labels_l[pick], tokenizer.pad_token_id))  # (b,)
        loss, metrics = dpo_loss(policy_w, policy_l, ref_w[pick], ref_l[pick], config.beta)
        return loss, metrics | {"dropped_pairs": dropped}

    fit(run, model, config.optim, loss_fn, progress=progress, plot=("loss", "reward_margin", "pair_accuracy"))
    return save_policy(model, tokenizer, run.path / "policy")


@torch.no_grad()
def reference_logprobs(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Σ log π_ref(completion | prompt) of every row, in blocks of 64 rows: π_ref is the starting
    policy, frozen, so these are computed once.  # (N, s) → (N,)"""
    return torch.cat(
        [completion_logprobs(model, *trim(ids[a : a + 64], labels[a : a + 64], pad_id)) for a in range(0, len(ids), 64)]
    )
