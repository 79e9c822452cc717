"""Long thoughts from a reasoning tree: the shortcut and the journey (O1-Journey §5).

* shortcut: the steps on the path to the correct answer, nothing else;
* journey: the same path, but at up to `detours` places it first takes a wrong branch the tree
  holds (a step the critic rejected there), says why it fails in a reflection line and goes back:

      Question: Calculate 3 + 4 * 2 - 5.
      3 + 8 - 6
      Wait: value changed to 5.
      3 + 8 - 5
      11 - 5
      6
      Answer: 6

A `Wait:` line withdraws the step before it (one line = one step back), so a long thought reads
back into the solution it settles on with `parse_thought`. Both come out as SFT `Example`s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reasonact.journey.critic import REFLECT, reflection
from reasonact.reasoning.mdp import render, solution_text
from reasonact.training.sequences import Example

if TYPE_CHECKING:
    from reasonact.journey.construct import JourneyTree


def shortcut(jt: JourneyTree) -> list[str]:
    """The correct path's steps; a tree without a correct answer has none (an error)."""
    if jt.answer_node is None:
        raise ValueError(f"tree: {jt.tree.problem.uid} has no correct answer node; it yields no shortcut or journey")
    return list(jt.tree.steps(jt.answer_node))


def journey(jt: JourneyTree, detours: int = 1, seed: int = 0) -> list[str]:
    """The correct path with up to `detours` wrong branches visited, reflected on and left.

    Detour places are drawn (seeded) among the path's nodes that have a rejected child, at most
    one per place; the wrong step shown is the first one the critic rejected there."""
    if detours < 0:
        raise ValueError(f"detours: expected >= 0, received {detours}")
    path = [0, *(n.id for n in jt.tree.path(jt.answer_node))] if jt.answer_node is not None else []
    steps = shortcut(jt)
    places = [i for i, node in enumerate(path[:-1]) if jt.rejected(node)]
    chosen = set(random.Random(seed).sample(places, min(detours, len(places))))
    out: list[str] = []
    for i, step in enumerate(steps):
        if i in chosen:
            wrong = jt.rejected(path[i])[0]
            out += [jt.tree.nodes[wrong].step, reflection(jt.verdicts[wrong])]
        out.append(step)
    return out


def to_example(jt: JourneyTree, steps: list[str], mask_withdrawn: bool = False) -> Example:
    """A long thought in the SFT trainer's format: the question as prompt, the thought as completion.

    `mask_withdrawn`: every step a `Wait:` line withdraws (the detour's wrong step) stays in the
    text as context but gets no loss, so the policy learns to reflect on and leave a wrong step
    without learning to write it; the reflection and the steps after it are trained."""
    text = solution_text(tuple(steps))
    spans, start = [], 0
    for i, step in enumerate(steps):
        end = start + len(solution_text((step,)))
        if mask_withdrawn and i + 1 < len(steps) and steps[i + 1].startswith(REFLECT):
            spans.append((start, end))
        start = end
    return Example(render(jt.tree.problem), text, no_loss=tuple(spans))


@dataclass(frozen=True)
class Thought:
    steps: tuple[str, ...]  # the solution the thought settles on (withdrawn steps removed)
    withdrawn: tuple[tuple[int, str], ...]  # (index in `steps` where it stood, the withdrawn step)
    reflections: int  # `Wait:` lines written


def parse_thought(lines: list[str] | tuple[str, ...]) -> Thought:
    """Apply the `Wait:` lines of a long thought: each withdraws the step before it."""
    steps: list[str] = []
    withdrawn = []
    reflections = 0
    for line in lines:
        if line.startswith(REFLECT):
            reflections += 1
            if steps:
                withdrawn.append((len(steps) - 1, steps.pop()))
        else:
            steps.append(line)
    return Thought(tuple(steps), tuple(withdrawn), reflections)
