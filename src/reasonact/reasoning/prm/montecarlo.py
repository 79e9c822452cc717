"""Math-Shepherd's automatic process labels (Wang et al. 2024, "Math-Shepherd: Verify and
Reinforce LLMs Step-by-step without Human Annotations", §3.3): from the state after step i, the
policy completes the solution k times; the step's hard label is 1 when any completion reaches the
gold answer, its soft label the fraction that do. An answer step is labelled by the outcome.

Labelling is batched: the k rollouts of every step prefix of a batch of solutions advance together,
one step per backend call for all live rollouts. Results are appended to a JSONL file a problem at
a time, so an interrupted run resumes without redoing finished problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks import Problem, Task


@dataclass(frozen=True)
class RolloutConfig:
    k: int = 4  # rollouts per step prefix (Math-Shepherd's N)
    max_steps: int = 8  # a rollout that has not answered by this depth counts as a miss
    max_step_tokens: int = 48  # tokens per generated step
    temperature: float = 1.0  # sampling temperature of the rollouts
    seed: int = 0  # sampling seed


def rollout_success(
    task: Task, states: Sequence[State], backend: Backend, config: RolloutConfig, seed: int
) -> list[float]:
    """Fraction of `config.k` policy completions from each state that reach the gold answer → [state].
    States that already end in an answer score their outcome (no rollouts)."""
    wins = [0.0] * len(states)
    open_states = [i for i, s in enumerate(states) if s.answer is None]
    for i, s in enumerate(states):
        if s.answer is not None:
            wins[i] = float(task.check_answer(s.problem, s.answer)) * config.k
    if open_states:
        first = backend.generate_steps(
            [states[i] for i in open_states], config.k, config.max_step_tokens, config.temperature, seed
        )
        live = []  # (state index, rollout state)
        for i, samples in zip(open_states, first, strict=True):
            for g in samples:
                if g.failure is None:
                    live.append((i, states[i].step(g.text.strip())))
        call = 1
        while live:
            done = [(i, s) for i, s in live if s.answer is not None]
            for i, s in done:
                wins[i] += float(task.check_answer(s.problem, s.answer))
            live = [(i, s) for i, s in live if s.answer is None and len(s.steps) < config.max_steps]
            if not live:
                break
            nexts = backend.generate_steps(
                [s for _, s in live], 1, config.max_step_tokens, config.temperature, seed + call
            )
            call += 1
            live = [(i, s.step(g.text.strip())) for (i, s), [g] in zip(live, nexts, strict=True) if g.failure is None]
    return [w / config.k for w in wins]


def monte_carlo_labels(
    task: Task, problem: Problem, solutions: Sequence[tuple[str, ...]], backend: Backend, config: RolloutConfig
) -> list[list[float]]:
    """Soft Math-Shepherd labels (fraction of successful rollouts) for every step of every solution
    of one problem → [solution][step]; hard labels are `label > 0`."""
    prefixes = [State(problem, steps[: i + 1]) for steps in solutions for i in range(len(steps))]
    valid = [i for i, s in enumerate(prefixes) if _writable(s)]
    scores = [0.0] * len(prefixes)
    seed = config.seed * 1_000_003 + int.from_bytes(problem.uid.encode()[-6:], "big") % 1_000_003
    for i, score in zip(valid, rollout_success(task, [prefixes[i] for i in valid], backend, config, seed), strict=True):
        scores[i] = score
    out, at = [], 0
    for steps in solutions:
        out.append(scores[at : at + len(steps)])
        at += len(steps)
    return out


def _writable(state: State) -> bool:
    """A prefix whose last step is a real step (a failed "…" step or an empty one is a dead end: 0)."""
    return state.steps[-1].strip() not in ("", "…")
