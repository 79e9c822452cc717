"""`reasonact journey bench`: GRPO step time, ours vs TRL's `GRPOTrainer`, on the same setup.

Same tiny policy (the shipped char-level SFT policy), same training questions (same task level),
same number of questions per step and group size G, same learning rate, β and ε, one process, one
thread. Each step is split into generation (sampling + rewards + advantages; TRL's reference
forward happens there too) and training (the forward/backward/optimiser work):

* ours: `reasonact.training.grpo.GRPOTrainer` — each group's whole solutions decoded in one
  `HFBackend.generate_until` call (one prefill, a KV cache per row), π_old log-probs come with the
  samples, policy and reference log-probs only at completion positions;
* TRL 1.16 `GRPOTrainer` (transformers `generate`, no vLLM on this CPU), with a reward function
  reading the same checker; its generation time is measured around `_generate_and_score_completions`.

The two run alternately for `rounds` rounds (ours, TRL, ours, TRL, …) so that a change in the
machine's load hits both; each side's step times are pooled over its rounds.

Keys: `vs_trl_grpo_throughput_ratio` = ours / TRL samples (completions) per second over the
measured steps (the first, warm-up step of every round is left out of both).
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reasonact.atomic import atomic_write_json
from reasonact.reasoning.mdp import render
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tasks.base import answer_of
from reasonact.runs import Run, to_jsonable
from reasonact.training.grpo import GRPOConfig, GRPOTrainer
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import load_policy, resolve_policy


@dataclass(frozen=True)
class JourneyBenchConfig:
    family: str = "arithmetic"  # task family of the questions
    difficulty: str = "easy"  # task level of both trainers' questions ("easy": the level the tiny policy learned)
    init: str = "tiny"  # the policy both trainers start from
    questions: int = 8  # questions per step
    group: int = 8  # G: completions per question
    steps: int = 4  # GRPO steps per trainer (the first is warm-up, not measured)
    max_steps: int = 6  # ours: reasoning steps per completion
    max_step_tokens: int = 24  # ours: tokens per step; TRL's max_completion_length = max_steps × this
    lr: float = 1e-5  # learning rate of both (small: the benchmark measures time, not learning)
    beta: float = 0.04  # KL weight of both
    threads: int = 1  # torch threads for both (1 is fastest on this busy 2-core machine)
    seed: int = 0  # questions and sampling
    rounds: int = 2  # alternating runs of each trainer (load changes hit both)
    out: Path = Path("runs/journey_bench.json")  # where the JSON goes


Times = tuple[list[float], list[float], list[int]]  # per measured step: step s, generation s, generated tokens


PRESETS: dict[str, tuple[str, JourneyBenchConfig]] = {
    "default": ("8 questions × G = 8, 4 steps each (first is warm-up): ours vs TRL GRPOTrainer.", JourneyBenchConfig()),
    "tiny": ("Smoke: 2 questions × G = 4, 2 steps.", JourneyBenchConfig(questions=2, group=4, steps=2, rounds=1)),
}


def measure_ours(config: JourneyBenchConfig, root: Path) -> Times:
    """One run of our trainer → (step s, generation s, generated tokens) per measured step."""
    grpo = GRPOConfig(
        family=config.family,
        difficulty=config.difficulty,
        init=config.init,
        questions=config.questions,
        group=config.group,
        pool=config.questions * config.steps,
        max_steps=config.max_steps,
        max_step_tokens=config.max_step_tokens,
        beta=config.beta,
        seed=config.seed,
        optim=OptimConfig(steps=config.steps, lr=config.lr, warmup=0.0, checkpoint_every=10_000),
        root=root,
        name="ours",
    )
    trainer = GRPOTrainer(grpo)
    tokens = []
    sample = trainer.step_batch

    def counted(step: int):
        rollouts, advantages, counts = sample(step)
        tokens.append(sum(len(r.token_ids) for r in rollouts))
        return rollouts, advantages, counts

    trainer.step_batch = counted
    trainer.train()
    records = Run(root / "ours").metrics()[1:]
    step_s = [m["step_s"] for m in records]
    generate_s = [m["generate_s"] for m in records]
    return step_s, generate_s, tokens[1:]


def measure_trl(config: JourneyBenchConfig, root: Path) -> Times:
    """One run of TRL's trainer → (step s, generation s, generated tokens) per measured step."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    task = make_task(config.family, config.difficulty)
    problems = {render(p): p for p in task.generate("train", config.questions * config.steps, seed=config.seed)}
    data = Dataset.from_list([{"prompt": prompt} for prompt in problems])

    def reward(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        out = []
        for prompt, completion in zip(prompts, completions, strict=True):
            answers = [a for a in map(answer_of, completion.split("\n")) if a is not None]
            out.append(float(bool(answers) and task.check_answer(problems[prompt], answers[0])))
        return out

    model, tokenizer = load_policy(resolve_policy(config.init, config.family))
    args = TRLConfig(
        output_dir=str(root / "trl"),
        per_device_train_batch_size=config.questions * config.group,
        num_generations=config.group,
        max_completion_length=config.max_steps * config.max_step_tokens,
        max_steps=config.steps,
        learning_rate=config.lr,
        beta=config.beta,
        temperature=1.0,
        seed=config.seed,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    generate_s: list[float] = []
    step_s: list[float] = []
    tokens: list[int] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.began = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            step_s.append(time.perf_counter() - self.began)

    trainer = TRLTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.add_callback(Clock())
    inner = trainer._generate_and_score_completions

    def timed(*a: Any, **k: Any):
        began = time.perf_counter()
        out = inner(*a, **k)
        generate_s.append(time.perf_counter() - began)
        tokens.append(int(out["completion_mask"].sum()))
        return out

    trainer._generate_and_score_completions = timed
    trainer.train()
    return step_s[1:], generate_s[1:], tokens[1:]


def summary(config: JourneyBenchConfig, rounds: list[Times]) -> dict:
    step_s, generate_s, tokens = ([x for r in rounds for x in r[k]] for k in range(3))
    step, generate = statistics.mean(step_s), statistics.mean(generate_s)
    return {
        "step_s": step,
        "generate_s": generate,
        "train_s": step - generate,
        "samples_per_s": config.questions * config.group / step,
        "generated_tokens_per_step": statistics.mean(tokens),
        "generated_tokens_per_s": statistics.mean(tokens) / generate,
        "steps_measured": len(step_s),
    }


def run(config: JourneyBenchConfig) -> dict[str, Any]:
    if config.steps < 2:
        raise ValueError(f"steps: expected >= 2 (the first step is warm-up), received {config.steps}")
    if config.rounds < 1:
        raise ValueError(f"rounds: expected >= 1, received {config.rounds}")
    before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        times: dict[str, list[Times]] = {"ours": [], "trl": []}
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(config.rounds):
                times["ours"].append(measure_ours(config, Path(tmp) / f"round_{k}"))
                times["trl"].append(measure_trl(config, Path(tmp) / f"round_{k}"))
        ours, trl = summary(config, times["ours"]), summary(config, times["trl"])
    finally:
        torch.set_num_threads(before)
    result = {
        "config": to_jsonable(config),
        "ours": ours,
        "trl": trl,
        "vs_trl_grpo_throughput_ratio": ours["samples_per_s"] / trl["samples_per_s"],
        "generation_speedup": trl["generate_s"] / ours["generate_s"],
        "training_speedup": trl["train_s"] / ours["train_s"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    atomic_write_json(config.out, result)
    for name in ("ours", "trl"):
        r = result[name]
        print(
            f"{name:>4}: step {r['step_s']:.2f} s = generation {r['generate_s']:.2f} + training {r['train_s']:.2f}; "
            f"{r['samples_per_s']:.1f} samples/s, {r['generated_tokens_per_step']:.0f} tokens/step"
        )
    print(f"vs_trl_grpo_throughput_ratio {result['vs_trl_grpo_throughput_ratio']:.2f} → {config.out}")
    return result
