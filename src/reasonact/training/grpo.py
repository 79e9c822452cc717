"""Group relative policy optimisation (Shao et al. 2024, DeepSeekMath §4.1, eq. 3).

For each question, G solutions are sampled from π_old (the current policy, through the same
backend as search); each gets a reward; advantages are normalised within the group:

    outcome:  Â_i,t = (r_i − mean(r)) / std(r)                      for every token of solution i
    process:  r̃_i,j = (r_i,j − mean(R)) / std(R) over all steps j of the group,
              Â_i,t = Σ_{steps j ending at or after t} r̃_i,j   (credit "step": r̃ of t's own step)

and the loss per token is the clipped surrogate minus a KL penalty to a frozen reference
(in the loss, not in the reward), with the unbiased k3 estimator:

    −[min(ρ Â, clip(ρ, 1−ε, 1+ε) Â) − β (π_ref/π − log(π_ref/π) − 1)],   ρ = π/π_old

averaged over each solution's tokens, then over solutions. Bad rewards (None / NaN) drop that
solution (counted); a group whose rewards are all equal carries no signal (counted, advantage 0;
with `skip_flat` it leaves the batch, as DAPO's dynamic sampling filters it, Yu et al. 2025 §3.2);
a mean KL above `max_kl` stops the run before the update, leaving the last checkpoint intact.

Throughput, the way TRL's `GRPOTrainer` gets it: each group's whole solutions are decoded in one
call with a KV cache per row (`generation="solutions"`; "steps" samples step by step through the
search API); π_old is the sampler's own log-probs (one update per batch, so π_old is the policy
that sampled; at T ≠ 1, where the sampler's log-probs are at T = 1, the policy's own tempered
log-probs, detached: π, π_old and π_ref are all softmax(logits / T), as in TRL); the policy and
reference forwards run each question's prompt once for its G completions and put only completion
positions through the LM head (`sequences.shared_prompt_logprobs`); the reference is skipped when
β = 0. `fit` leaves the model in train mode; the loss puts it in eval mode, so that dropout, if the
policy has any, cannot make π_old, π and π_ref three different functions (TRL's
`GRPOConfig.disable_dropout`, for the same reason).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import render
from reasonact.reasoning.scorers import OracleScorer
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tasks.base import Task
from reasonact.training.rollouts import Rollout, sample_rollouts, sample_solutions
from reasonact.training.run_loop import OptimConfig, fit, open_training_run
from reasonact.training.sequences import (
    load_policy,
    resolve_policy,
    save_policy,
    shared_prompt_logprobs,
    token_logprobs,
)
from reasonact.training.sft import batch_indices

RewardFn = Callable[[Rollout], float | None]  # outcome reward of one solution (None: could not judge)
ProcessRewardFn = Callable[[Rollout], Sequence[float] | None]  # one reward per step


@dataclass(frozen=True)
class GRPOConfig:
    family: str = "arithmetic"  # task family of the training questions
    difficulty: str = "easy"  # named task level (Task.LEVELS); "easy" is what the shipped tiny policy learned
    init: str = "tiny"  # starting policy and π_ref: a preset name or a model directory
    reward: Literal["outcome", "process"] = "outcome"  # answer check, or the step checker per step (PRM slot)
    credit: Literal["to_go", "step"] = "to_go"  # process rewards: Σ of this and later steps, or this step's own
    questions: int = 8  # questions per step
    group: int = 8  # G: solutions sampled per question
    pool: int = 2000  # training questions (train split) the steps draw from
    max_steps: int = 6  # steps per solution before it counts as unfinished
    max_step_tokens: int = 24  # tokens per step
    temperature: float = 1.0  # T: sampling temperature; π, π_old, π_ref in the loss are softmax(logits / T) too
    epsilon: float = 0.2  # ε: clip range of the ratio ρ = π/π_old
    beta: float = 0.04  # β: weight of the KL(π‖π_ref) term in the loss
    max_kl: float = 5.0  # a mean per-token KL above this stops the run (blow-up guard)
    skip_flat: bool = False  # drop groups with all-equal rewards from the batch (DAPO); else they add KL only
    generation: Literal["solutions", "steps"] = "solutions"  # whole solutions per call, or one step per call
    seed: int = 0  # question order and sampling
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=40, lr=5e-5, warmup=0.0, checkpoint_every=10))
    root: Path = Path("runs")  # parent of the run directory
    name: str = "grpo"  # run directory name
    resume: bool = True  # continue an interrupted run with the same config

    def __post_init__(self) -> None:
        if self.group < 2:
            raise ValueError(f"group: expected G >= 2 samples per question (advantages are relative), got {self.group}")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon: expected a clip range in (0, 1), received {self.epsilon}")
        if self.beta < 0:
            raise ValueError(f"beta: expected >= 0, received {self.beta}")
        if not self.temperature > 0:
            raise ValueError(f"temperature: expected T > 0 (G distinct samples), received {self.temperature}")


def outcome_reward(task: Task) -> RewardFn:
    """1 for a correct final answer, 0 otherwise (unfinished / failed solutions included)."""
    return lambda r: float(r.correct(task))


def process_reward(task: Task) -> ProcessRewardFn:
    """The step checker's 0/1 per step (the oracle PRM; a learned PRM plugs in the same way)."""
    scorer = OracleScorer(task)

    def reward(r: Rollout) -> list[float]:
        scores = scorer.score([r.state])[0]
        return scores if r.failure is None else [*scores[:-1], 0.0]  # a failed last step earns nothing

    return reward


def valid(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def group_advantages(rewards: Sequence[float]) -> list[float]:
    """(r − mean) / std within one group; all zeros when every reward is equal."""
    r = torch.tensor(rewards, dtype=torch.float64)  # (G,)
    std = r.std(unbiased=False)
    return [0.0] * len(rewards) if std < 1e-8 else ((r - r.mean()) / std).tolist()


def process_advantages(
    step_rewards: Sequence[Sequence[float]], step_ends: Sequence[Sequence[int]], to_go: bool = True
) -> list[list[float]]:
    """Per-token advantages from per-step rewards normalised over the whole group → [solution][token].

    to_go: a token's advantage is the sum of its step's and the later steps' normalised rewards
    (DeepSeekMath §4.1.3); False: its own step's only (the checker judges each step given its
    prefix, so a step's credit need not wait for the steps after it)."""
    flat = torch.tensor([x for rs in step_rewards for x in rs], dtype=torch.float64)
    std = flat.std(unbiased=False) if len(flat) > 1 else torch.tensor(0.0)
    out = []
    for rewards, ends in zip(step_rewards, step_ends, strict=True):
        norm = [0.0 if std < 1e-8 else float((x - flat.mean()) / std) for x in rewards]
        credit = [sum(norm[j:]) for j in range(len(norm))] if to_go else norm  # per step
        starts = [0, *ends[:-1]]
        out.append([credit[j] for j, (a, b) in enumerate(zip(starts, ends, strict=True)) for _ in range(b - a)])
    return out


def grpo_loss(
    logps: torch.Tensor,
    old: torch.Tensor,
    ref: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DeepSeekMath eq. 3 with the k3 KL. All (b, t); mask marks completion tokens → ((), metrics)."""
    ratio = torch.exp(logps - old)  # (b, t)
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon) * advantages)
    log_ref_ratio = ref - logps  # (b, t)
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # (b, t) ≥ 0
    per_token = -(surrogate - beta * kl) * mask
    tokens = mask.sum(-1).clamp(min=1)  # (b,)
    loss = (per_token.sum(-1) / tokens).mean()
    with torch.no_grad():
        count = mask.sum().clamp(min=1)
        kl_mean = float((kl * mask).sum() / count)
        clipped = float((((ratio - 1).abs() > epsilon).float() * mask).sum() / count)
        ratio_dev = float(((ratio - 1).abs() * mask).max())
    return loss, {"kl": kl_mean, "clip_fraction": clipped, "max_ratio_dev": ratio_dev}


def check_kl(kl: float, step: int, max_kl: float) -> None:
    """The KL blow-up guard: stop the run (its last checkpoint intact) when mean KL(π‖π_ref) exceeds max_kl."""
    if kl > max_kl:
        raise FloatingPointError(
            f"kl: mean KL(π‖π_ref) {kl:.3g} at step {step} exceeds max_kl {max_kl}; "
            "lower optim.lr or raise beta (the last checkpoint is intact)"
        )


def sequence_loss(
    model: torch.nn.Module,
    reference: torch.nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    clip: tuple[float, float, float],  # (ε, β, max_kl) of the config
    step: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """`grpo_loss` on a batch of right-padded sequences, with the KL blow-up guard.

    batch = (ids (b, s), labels (b, s), π_old log-probs (b, s-1), advantages (b, s-1)), the last two
    aligned with `token_logprobs`' shifted output."""
    ids, labels, old, advantages = batch
    epsilon, beta, max_kl = clip
    logps, mask = token_logprobs(model, ids, labels)  # (b, s-1)
    with torch.no_grad():
        ref, _ = token_logprobs(reference, ids, labels)
    loss, extra = grpo_loss(logps, old, ref, advantages, mask.float(), epsilon, beta)
    check_kl(extra["kl"], step, max_kl)
    return loss, extra


class GRPOTrainer:
    """Samples groups through an `HFBackend` that shares the policy's weights, scores them, updates."""

    def __init__(self, config: GRPOConfig, reward: RewardFn | ProcessRewardFn | None = None) -> None:
        self.config = config
        self.task = make_task(config.family, config.difficulty)
        self.reward = reward or (outcome_reward(self.task) if config.reward == "outcome" else process_reward(self.task))
        path = resolve_policy(config.init, config.family)
        self.model, self.tokenizer = load_policy(path)
        self.reference, _ = load_policy(path)
        self.reference.requires_grad_(False).eval()
        rows = max(64, config.questions * config.group)  # one decode batch per step
        self.backend = HFBackend(self.model, self.tokenizer, threads=1, max_rows=rows)
        self.problems = self.task.generate("train", config.pool, seed=config.seed)

    def step_batch(self, step: int) -> tuple[list[Rollout], list[list[float]], dict[str, float]]:
        """Sample the step's groups and their per-token advantages → (rollouts, advantages, counts)."""
        c = self.config
        pick = batch_indices(c.seed, step, len(self.problems), c.questions).tolist()
        sample = sample_solutions if c.generation == "solutions" else sample_rollouts
        groups = sample(
            self.backend,
            [self.problems[i] for i in pick],
            c.group,
            c.max_steps,
            c.max_step_tokens,
            c.temperature,
            seed=c.seed * 100_003 + step,
        )
        rollouts, advantages = [], []
        bad = flat = untrainable = 0
        rewards_seen = []
        for group in groups:
            faithful = [r for r in group if self.faithful(r)]
            untrainable += len(group) - len(faithful)
            scored = [(r, self.reward(r)) for r in faithful]
            if c.reward == "outcome":
                kept = [(r, x) for r, x in scored if valid(x)]
                adv = group_advantages([x for _, x in kept]) if len(kept) > 1 else [0.0] * len(kept)
                per_token = [[a] * len(r.token_ids) for (r, _), a in zip(kept, adv, strict=True)]
                rewards_seen += [x for _, x in kept]
            else:
                kept = [(r, x) for r, x in scored if x is not None and len(x) == len(r.steps) and all(map(valid, x))]
                per_token = process_advantages(
                    [x for _, x in kept], [r.step_ends for r, _ in kept], to_go=c.credit == "to_go"
                )
                rewards_seen += [sum(x) / max(1, len(x)) for _, x in kept]
            bad += len(faithful) - len(kept)
            is_flat = all(a == 0 for row in per_token for a in row)
            flat += is_flat
            if is_flat and c.skip_flat:
                continue
            rollouts += [r for r, _ in kept]
            advantages += per_token
        correct = sum(r.correct(self.task) for g in groups for r in g) / sum(len(g) for g in groups)
        counts = {"bad_rewards": bad, "flat_groups": flat, "untrainable": untrainable, "train_accuracy": correct}
        counts["reward"] = sum(rewards_seen) / max(1, len(rewards_seen))
        return rollouts, advantages, counts

    def faithful(self, rollout: Rollout) -> bool:
        """Whether the text the backend was prompted with re-encodes to the sampled tokens: a step
        holding tokens that do not survive decoding (special tokens) would make π_old and the
        training forward see different contexts; such rollouts are dropped and counted. Whole
        solutions are decoded from their own tokens, so they always are."""
        if self.config.generation == "solutions":
            return True
        context = self.tokenizer(render(rollout.problem, tuple(rollout.steps[:-1])))["input_ids"]
        prompt = self.tokenizer(render(rollout.problem))["input_ids"]
        cut = rollout.step_ends[-2] if len(rollout.step_ends) > 1 else 0
        return context == prompt + rollout.token_ids[:cut]

    def batch(self, rollouts: list[Rollout], advantages: list[list[float]]):
        """The distinct prompts' ids, each rollout's prompt index and token ids, and its π_old
        log-probs and advantages (b, c) right-padded, aligned with `shared_prompt_logprobs`."""
        prompts: dict[tuple[int, ...], int] = {}
        rows = []
        for r in rollouts:
            ids = tuple(self.tokenizer(render(r.problem))["input_ids"])
            rows.append(prompts.setdefault(ids, len(prompts)))
        width = max(len(r.token_ids) for r in rollouts)
        old = torch.zeros(len(rollouts), width)  # (b, c)
        adv = torch.zeros(len(rollouts), width)  # (b, c)
        for i, r in enumerate(rollouts):
            old[i, : len(r.token_ids)] = torch.tensor(r.logprobs)
            adv[i, : len(r.token_ids)] = torch.tensor(advantages[i], dtype=torch.float32)
        return list(prompts), rows, [r.token_ids for r in rollouts], old, adv

    def loss_fn(self, step: int) -> tuple[torch.Tensor | None, dict[str, float]]:
        self.model.eval()  # no dropout in sampling nor in the training forward: else ρ ≠ 1 before any update
        began = time.perf_counter()
        rollouts, advantages, metrics = self.step_batch(step)
        metrics["generate_s"] = time.perf_counter() - began
        if not rollouts or (self.config.beta == 0 and all(a == 0 for row in advantages for a in row)):
            return None, metrics  # nothing to learn from: counted as a skipped step
        loss, extra = self.loss(*self.batch(rollouts, advantages))
        check_kl(extra["kl"], step, self.config.max_kl)
        return loss, metrics | extra

    def loss(self, prompts, rows, completions, old, adv) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 3 on one `batch`: policy forward (with grad) and reference forward (only when β > 0),
        each running a question's prompt once for its G completions → (loss, metrics).

        π, π_old and π_ref are the tempered policies softmax(logits / T) of the sampling temperature,
        the distribution the samples were drawn from (as TRL's GRPOTrainer scores them). The sampler
        records log-probs at T = 1, so at T ≠ 1 π_old is the policy's own tempered log-probs, detached:
        one update per batch, so the weights that sampled are the weights being scored (TRL does the
        same when it makes one update per generation)."""
        pad, t = self.tokenizer.pad_token_id, self.config.temperature
        logps, mask = shared_prompt_logprobs(self.model, prompts, rows, completions, pad, temperature=t)  # (b, c)
        if t != 1:
            old = logps.detach()
        if self.config.beta > 0:
            with torch.no_grad():
                ref, _ = shared_prompt_logprobs(self.reference, prompts, rows, completions, pad, temperature=t)
        else:
            ref = logps.detach()  # the KL term is 0 (and weighted by β = 0)
        return grpo_loss(logps, old, ref, adv, mask.float(), self.config.epsilon, self.config.beta)

    def train(self, progress: bool = False) -> Path:
        run, finished = open_training_run(self.config)
        if finished is not None:
            return finished
        plot = ("loss", "reward", "train_accuracy", "kl")
        fit(run, self.model, self.config.optim, self.loss_fn, self.backend.weights_changed, progress, plot)
        return save_policy(self.model, self.tokenizer, run.path / "policy")


def train_grpo(config: GRPOConfig, progress: bool = False) -> Path:
    """GRPO from `config.init` → the trained policy directory (`<run>/policy`)."""
    return GRPOTrainer(config).train(progress)


# The measured recipe (docs/journey.md, "Why GRPO did not move the policy"): from the tiny policy, 1000 steps of
# 16 questions × G = 8 with the step checker's per-step credit and flat groups dropped took held-out greedy accuracy
# from 0.146 to 0.198 and 0.182 (seeds 0, 1; 500 test problems; pooled +0.044 [+0.021, +0.065]); the same with
# to-go credit +0.016, 400 steps +0.012, the study's old 40 × 8 × 8 nothing; lr 1e-3 collapsed (0.13 → 0.04);
# the peak lr held constant +0.004 (seed 0), T = 0.7 with tempered log-probs +0.028 [+0.006, +0.049] (seeds 0, 1),
# 1500 steps +0.047 [+0.025, +0.068] (seeds 0, 1; +0.003 over 1000, not worth its time).
RECIPE = GRPOConfig(
    reward="process",
    credit="step",
    questions=16,
    skip_flat=True,
    optim=OptimConfig(steps=1000, lr=3e-4, warmup=0.05, checkpoint_every=100),
)

GRPO_PRESETS: dict[str, tuple[str, GRPOConfig]] = {
    "tiny": (
        "Smoke: 2 steps of 2 questions × G = 4 from the tiny policy.",
        GRPOConfig(questions=2, group=4, pool=20, optim=OptimConfig(steps=2, lr=1e-4, warmup=0.0), name="grpo_tiny"),
    ),
    "default": (
        "1000 steps of 16 questions × G = 8, per-step process rewards, flat groups dropped, lr 3e-4, tiny policy "
        "(~35 min here; 40 steps do not move the policy, docs/journey.md).",
        RECIPE,
    ),
}


def main(config: GRPOConfig) -> None:
    """`reasonact train grpo`: one thread (fastest for the tiny policies here), progress lines."""
    torch.set_num_threads(1)
    print(f"policy → {train_grpo(config, progress=True)}")
