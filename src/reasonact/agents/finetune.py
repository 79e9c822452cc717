"""Fine-tuning agents (Pangu-Agent §4): SFT on outcome-filtered expert traces, then GRPO over whole episodes.

1. **SFT.** The rule-based teacher (`agents.teacher`) runs the agent's flow on *train* seeds; the
   well-formed calls of its successful episodes (`sft_records`) become (prompt, completion) pairs
   and `training.sft.train_sft` fits the student on them (completion-only cross-entropy).
2. **GRPO over episodes.** For each of `questions` train (environment, seed) pairs per step, G
   episodes are sampled from the student at temperature 1; each episode's outcome r_i ∈ {0, 1} is
   normalised within its group, Â_i = (r_i − mean r) / std r (DeepSeekMath eq. 3, `group_advantages`),
   and every token of every LM call of episode i gets Â_i. The loss is `training.grpo.grpo_loss`
   (clipped ratio to π_old = the sampling policy, k3 KL to the frozen SFT policy) on a seeded
   subsample of `max_rows` calls, run by `training.run_loop.fit` (checkpoints, exact resume).

The student is a small causal LM behind `BackendLM` that sees the last `window` characters of
each prompt (its context); the same cut applies to its SFT data, its rollouts and its evaluation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reasonact.agents.agent import FLOWS, EpisodeConfig, run_episode
from reasonact.agents.envs import TextEnv, make_env
from reasonact.agents.policy import BackendLM, Call, clip_prompt
from reasonact.agents.teacher import teacher_lm
from reasonact.agents.trace import Trace, sft_records
from reasonact.training.grpo import group_advantages, sequence_loss
from reasonact.training.run_loop import OptimConfig, fit, open_training_run
from reasonact.training.sequences import IGNORE, Example, load_policy, resolve_policy, save_policy
from reasonact.training.sft import SFTConfig, batch_indices, train_sft


def student_lm(policy: str | Path, window: int | None, temperature: float = 0.0, name: str = "student") -> BackendLM:
    """A trained policy directory (or a `reasoning.step_lm` preset) as an agent LM seeing `window` characters."""
    from reasonact.reasoning.backends.hf import HFBackend

    backend = HFBackend.from_pretrained(resolve_policy(str(policy), "arithmetic"), threads=1)
    backend.max_context = 1 << 16  # rotary positions; prompts are bounded by `window` instead
    return BackendLM(backend, temperature, name=name, window=window)


def teacher_traces(envs: tuple[str, ...], flow: str, seeds: int, episode: EpisodeConfig) -> list[Trace]:
    """The teacher's episodes of `flow` on train seeds 0 .. seeds-1 of every environment."""
    lm = teacher_lm()
    return [
        run_episode(make_env(name, split="train"), FLOWS[flow], lm, seed, flow, episode)
        for name in envs
        for seed in range(seeds)
    ]


def sft_examples(traces: list[Trace], window: int | None) -> list[Example]:
    """`sft_records` of the successful traces as SFT pairs: the prompt as the student sees it, the
    completion ending at the newline the student stops at."""
    return [Example(clip_prompt(r["prompt"], window), r["completion"] + "\n", eos=False) for r in sft_records(traces)]


@dataclass(frozen=True)
class EpisodeGRPOConfig:
    envs: tuple[str, ...] = ("problems:arithmetic", "babyai", "split")  # training environments (train split)
    flow: str = "structured"  # the agent's flow (a name in FLOWS)
    init: str = "tiny"  # starting policy and π_ref: a model directory (the SFT student) or a step_lm preset
    window: int | None = 384  # characters of each prompt the student sees
    pool: int = 24  # train seeds per environment the steps draw from
    questions: int = 2  # (environment, seed) pairs per step
    group: int = 4  # G: episodes sampled per pair (≤ 64: each gets its own sampling stream)
    max_rows: int = 48  # LM calls trained on per step: a seeded subsample of the step's calls
    temperature: float = 1.0  # sampling temperature of the episodes (π_old log-probs are at T = 1)
    epsilon: float = 0.2  # ε: clip range of the ratio ρ = π/π_old
    beta: float = 0.04  # β: weight of the KL(π‖π_ref) term
    max_kl: float = 5.0  # a mean per-token KL above this stops the run (blow-up guard)
    seed: int = 0  # pair order and sampling
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)  # malformed-call budget, sandbox limits
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=6, lr=5e-4, warmup=0.0, checkpoint_every=3))
    root: Path = Path("runs")  # parent of the run directory
    name: str = "agent_grpo"  # run directory name
    resume: bool = True  # continue an interrupted run with the same config

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise ValueError(f"flow: expected one of {sorted(FLOWS)}, received {self.flow!r}")
        if not 2 <= self.group <= 64:
            raise ValueError(f"group: expected 2 <= G <= 64 episodes per pair (relative advantages), got {self.group}")
        for name in ("pool", "questions", "max_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")


@dataclass(frozen=True)
class Row:
    call: Call  # one LM call of a sampled episode
    advantage: float  # its episode's group-normalised outcome


class EpisodeGRPO:
    """Samples groups of whole episodes through a backend sharing the student's weights; updates."""

    def __init__(self, config: EpisodeGRPOConfig, envs: dict[str, TextEnv] | None = None) -> None:
        """`envs` replaces `make_env(name, split="train")` for the names in config.envs (tests, custom envs)."""
        self.config = config
        self.lm = student_lm(config.init, config.window, config.temperature)
        self.model, self.tokenizer = self.lm.backend.model, self.lm.backend.tokenizer
        self.reference, _ = load_policy(resolve_policy(config.init, "arithmetic"))
        self.reference.requires_grad_(False).eval()
        self.envs = envs or {name: make_env(name, split="train") for name in config.envs}
        self.pairs = [(name, seed) for name in config.envs for seed in range(config.pool)]

    def sample(self, step: int) -> tuple[list[Row], dict[str, float]]:
        """The step's episode groups → (every call with its episode's advantage, counts)."""
        c = self.config
        rows: list[Row] = []
        rewards: list[float] = []
        flat = 0
        for q, index in enumerate(batch_indices(c.seed, step, len(self.pairs), c.questions).tolist()):
            name, seed = self.pairs[index]
            episodes = []
            for g in range(c.group):
                lm = dataclasses.replace(self.lm, seed_offset=(c.seed * 1_000_003 + step * 101 + q) * 64 + g, calls=[])
                trace = run_episode(self.envs[name], FLOWS[c.flow], lm, seed, c.flow, c.episode)
                episodes.append((float(trace.success), lm.calls))
            advantages = group_advantages([r for r, _ in episodes])
            flat += all(a == 0 for a in advantages)
            rewards += [r for r, _ in episodes]
            rows += [Row(call, a) for (_, calls), a in zip(episodes, advantages, strict=True) for call in calls]
        rows = [r for r in rows if r.call.generation.token_ids and r.call.generation.finish != "too_long"]
        if len(rows) > c.max_rows:
            generator = torch.Generator().manual_seed(c.seed * 7_919 + step)
            rows = [rows[i] for i in torch.randperm(len(rows), generator=generator)[: c.max_rows].tolist()]
        return rows, {"reward": sum(rewards) / len(rewards), "flat_groups": flat, "rows": len(rows)}

    def tensors(self, rows: list[Row]) -> tuple[torch.Tensor, ...]:
        """Right-padded prompt + generated ids, labels, π_old log-probs and advantages.  # (b, s) each"""
        prompts = [self.tokenizer(r.call.prompt)["input_ids"] for r in rows]
        width = max(len(p) + len(r.call.generation.token_ids) for p, r in zip(prompts, rows, strict=True))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        labels = torch.full((len(rows), width), IGNORE)
        old = torch.zeros(len(rows), width)
        advantages = torch.zeros(len(rows), width)
        for i, (prompt, row) in enumerate(zip(prompts, rows, strict=True)):
            generated = row.call.generation
            a, b = len(prompt), len(prompt) + len(generated.token_ids)
            ids[i, :b] = torch.tensor(prompt + list(generated.token_ids))
            labels[i, a:b] = torch.tensor(generated.token_ids)
            old[i, a:b] = torch.tensor(generated.logprobs)
            advantages[i, a:b] = row.advantage
        return ids, labels, old[:, 1:], advantages[:, 1:]  # old / advantages aligned with token_logprobs' shift

    def loss_fn(self, step: int) -> tuple[torch.Tensor | None, dict[str, float]]:
        began = time.perf_counter()
        rows, metrics = self.sample(step)
        metrics["generate_s"] = time.perf_counter() - began
        if not rows or (self.config.beta == 0 and all(r.advantage == 0 for r in rows)):
            return None, metrics  # nothing to learn from: a skipped step
        clip = (self.config.epsilon, self.config.beta, self.config.max_kl)
        loss, extra = sequence_loss(self.model, self.reference, self.tensors(rows), clip, step)
        return loss, metrics | extra

    def train(self, progress: bool = False) -> Path:
        run, finished = open_training_run(self.config)
        if finished is not None:
            return finished
        fit(run, self.model, self.config.optim, self.loss_fn, self.lm.backend.weights_changed, progress, ("reward",))
        return save_policy(self.model, self.tokenizer, run.path / "policy")


@dataclass(frozen=True)
class FinetuneConfig:
    init: str = "tiny"  # the student before fine-tuning: a reasoning.step_lm preset or a model directory
    window: int = 384  # characters of each prompt the student sees (its context: the end of the prompt)
    teacher_seeds: int = 64  # teacher episodes per environment on train seeds (SFT data before filtering)
    sft_batch: int = 8  # SFT sequences (LM calls) per step
    sft: OptimConfig = field(default_factory=lambda: OptimConfig(steps=250, lr=3e-3, checkpoint_every=50))
    grpo: EpisodeGRPOConfig = field(default_factory=EpisodeGRPOConfig)  # GRPO budget (envs, flow, init, … set per run)
    seeds: tuple[int, ...] = (0, 1, 2)  # fine-tuning seeds: SFT batch order and GRPO sampling
    root: Path = Path("runs/agent_finetune")  # run directories of every stage

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds: expected at least one fine-tuning seed, received none")
        if self.window < 64:
            raise ValueError(f"window: expected >= 64 characters of prompt, received {self.window}")


def finetune(
    config: FinetuneConfig, envs: tuple[str, ...], flow: str, examples: list[Example], seed: int, progress: bool
) -> dict[str, Path]:
    """SFT of the student on `examples`, then GRPO over episodes → {"after_sft": dir, "after_grpo": dir}."""
    tag = f"{flow}_seed{seed}"
    sft = SFTConfig(
        init=config.init, batch=config.sft_batch, seed=seed, optim=config.sft, root=config.root, name=f"sft_{tag}"
    )
    sft_policy = train_sft(sft, examples, progress=progress)
    grpo = dataclasses.replace(
        config.grpo, envs=envs, flow=flow, init=str(sft_policy), window=config.window, seed=seed,
        root=config.root, name=f"grpo_{tag}",
    )  # fmt: skip
    return {"after_sft": sft_policy, "after_grpo": EpisodeGRPO(grpo).train(progress)}
