"""STaR: self-taught reasoner (Zelikman et al. 2022, Algorithm 1).

Each round: the current policy writes a rationale (a step-by-step solution) for every training
question; the ones that reach the right answer are kept; for the others the question is asked
again with the answer as a hint (`rationalisation`) and correct hinted rationales are kept too,
paired with the plain question. The *starting* policy is then fine-tuned on this round's kept
rationales (the paper restarts from the base model each round to avoid drift) and becomes the
next round's sampler. Each round is an SFT run inside the STaR run, so an interrupted STaR run
resumes inside the round it stopped in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import render, solution_text
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tasks.base import Problem
from reasonact.runs import Run
from reasonact.training.rollouts import sample_rollouts
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import Example, resolve_policy
from reasonact.training.sft import SFTConfig, train_sft

HINT = " (the answer is {answer})"  # appended to the question when rationalising


@dataclass(frozen=True)
class STaRConfig:
    family: str = "arithmetic"  # task family of the training questions
    difficulty: str = "easy"  # named task level (Task.LEVELS); "easy" is what the shipped tiny policy learned
    init: str = "tiny"  # base policy: samples in round 1, and the start of every round's fine-tune
    rounds: int = 2  # outer iterations (sample → filter → fine-tune)
    problems: int = 200  # training questions per round (train split, a fresh draw each round)
    samples: int = 2  # rationales sampled per question
    temperature: float = 0.7  # sampling temperature of the rationales
    rationalise: bool = True  # retry failed questions with the answer as a hint
    max_steps: int = 6  # steps per rationale
    max_step_tokens: int = 24  # tokens per step
    batch: int = 32  # SFT sequences per step
    sft: OptimConfig = field(default_factory=lambda: OptimConfig(steps=100, lr=5e-4))  # each round's fine-tune
    seed: int = 0  # question draws and sampling
    root: Path = Path("runs")  # parent of the run directory
    name: str = "star"  # run directory name
    resume: bool = True  # continue an interrupted run with the same config

    def __post_init__(self) -> None:
        for name in ("rounds", "problems", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")


def hinted(problem: Problem) -> Problem:
    return dataclasses.replace(problem, question=problem.question + HINT.format(answer=problem.answer))


def collect(config: STaRConfig, policy: Path, problems: list[Problem], seed: int) -> tuple[list[Example], dict]:
    """One round's kept rationales (as SFT examples on the plain question) and their counts."""
    task = make_task(config.family, config.difficulty)
    backend = HFBackend.from_pretrained(policy, threads=1)
    args = (config.samples, config.max_steps, config.max_step_tokens, config.temperature)
    examples: dict[str, Example] = {}  # one per distinct (question, rationale)
    solved: set[str] = set()

    def keep(asked: list[Problem], plain: dict[str, Problem], seed: int) -> None:
        """Sample for the `asked` questions; keep correct rationales under the plain question."""
        for group in sample_rollouts(backend, asked, *args, seed=seed):
            for r in (r for r in group if r.correct(task)):
                solved.add(r.problem.uid)
                completion = solution_text(tuple(r.steps))
                examples.setdefault(r.problem.uid + completion, Example(render(plain[r.problem.uid]), completion))

    keep(problems, {p.uid: p for p in problems}, seed)
    direct = len(examples)
    failed = [p for p in problems if p.uid not in solved]
    if config.rationalise and failed:
        keep([hinted(p) for p in failed], {p.uid: p for p in failed}, seed + 1)
    counts = {
        "solved_direct": len(problems) - len(failed),
        "solved_rationalised": len(solved) - (len(problems) - len(failed)),
        "kept_direct": direct,
        "kept_rationalised": len(examples) - direct,
        "sample_accuracy": (len(problems) - len(failed)) / len(problems),
    }
    return list(examples.values()), counts


def train_star(config: STaRConfig, progress: bool = False) -> Path:
    """`config.rounds` STaR rounds → the last round's policy directory."""
    run = Run.open(config.root, config.name, config, resume=config.resume)
    base = resolve_policy(config.init, config.family)
    logged = {m["step"] for m in run.metrics()}
    policy = base
    task = make_task(config.family, config.difficulty)
    for r in range(1, config.rounds + 1):
        sft = SFTConfig(
            family=config.family,
            init=str(base),
            batch=config.batch,
            seed=config.seed + r,
            optim=config.sft,
            root=run.path,
            name=f"round_{r}",
            resume=True,
        )
        done = run.path / f"round_{r}" / "policy"
        problems = task.generate("train", config.problems, seed=config.seed * 1_000 + r)
        if not (done / "config.json").exists():
            examples, counts = collect(config, policy, problems, seed=config.seed * 7_919 + r)
            if not examples:
                raise ValueError(
                    f"round {r}: no rationale reached the right answer on {config.problems} problems; "
                    "raise samples / temperature or start from a stronger policy"
                )
            if r not in logged:
                run.log(r, examples=len(examples), **counts)
            policy = train_sft(sft, examples, progress)
        else:
            policy = done
        if progress:
            print(f"star round {r}/{config.rounds} → {policy}", flush=True)
    return policy


STAR_PRESETS: dict[str, tuple[str, STaRConfig]] = {
    "tiny": (
        "Smoke: one round on 8 problems, 2 SFT steps.",
        STaRConfig(rounds=1, problems=8, sft=OptimConfig(steps=2, lr=5e-4), name="star_tiny"),
    ),
    "default": ("Two rounds on 200 problems from the tiny policy.", STaRConfig()),
}


def main(config: STaRConfig) -> None:
    """`reasonact train star`: one thread (fastest for the tiny policies here), progress lines."""
    import torch

    torch.set_num_threads(1)
    print(f"policy → {train_star(config, progress=True)}")
