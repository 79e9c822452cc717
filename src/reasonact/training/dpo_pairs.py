"""Preference pairs from search trees, judged by the task's checker.

* `step_pairs`: at every node with both a child the checker accepts and one it rejects, the two
  sibling steps given the shared prefix (step-level DPO; the tree's failed branches are the
  negative signal).
* `sequence_pairs`: a correct and a wrong finished solution of the same question.

Trees without a correct leaf give no sequence pair and are counted in `PairStats.no_correct`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from reasonact.reasoning.mdp import STEP_BOUNDARY, render, solution_text
from reasonact.reasoning.tasks.base import Task
from reasonact.reasoning.tree import Tree
from reasonact.training.dpo import Preference


@dataclass
class PairStats:
    trees: int = 0  # trees read
    no_correct: int = 0  # trees without a correct finished solution
    pairs: int = 0  # pairs produced


def step_labels(tree: Tree, task: Task) -> dict[int, bool]:
    """node id → the checker accepts the path to it (failed generations are wrong)."""
    labels = {}
    for node in tree.nodes[1:]:
        if node.failure is not None:
            labels[node.id] = False
        else:
            labels[node.id] = task.check_steps(tree.problem, tree.steps(node.id))[-1].correct
    return labels


def step_pairs(
    trees: Iterable[Tree], task: Task, per_node: int = 2, stats: PairStats | None = None
) -> list[Preference]:
    """Sibling (accepted, rejected) steps, at most `per_node` pairs per parent."""
    stats = stats if stats is not None else PairStats()
    out = []
    for tree in trees:
        stats.trees += 1
        labels = step_labels(tree, task)
        for node in tree.nodes:
            good = dict.fromkeys(tree.nodes[c].step for c in node.children if labels[c])
            bad = dict.fromkeys(tree.nodes[c].step for c in node.children if not labels[c] and tree.nodes[c].step)
            prompt = render(tree.problem, tree.steps(node.id))
            for chosen, rejected in itertools.islice(zip(itertools.cycle(good), bad), per_node if good else 0):
                out.append(Preference(prompt, chosen + STEP_BOUNDARY, rejected + STEP_BOUNDARY, eos=False))
    stats.pairs += len(out)
    return out


def sequence_pairs(trees: Iterable[Tree], task: Task, stats: PairStats | None = None) -> list[Preference]:
    """(correct, wrong) finished solutions per tree, paired in order; the shorter list decides."""
    stats = stats if stats is not None else PairStats()
    out = []
    for tree in trees:
        stats.trees += 1
        finished = tree.answers()
        right = [n for n in finished if task.check_answer(tree.problem, n.answer or "")]
        wrong = [n for n in finished if not task.check_answer(tree.problem, n.answer or "")]
        if not right:
            stats.no_correct += 1
            continue
        for r, w in zip(itertools.cycle(right), wrong):
            out.append(
                Preference(
                    render(tree.problem), solution_text(tree.steps(r.id)), solution_text(tree.steps(w.id)), eos=True
                )
            )
    stats.pairs += len(out)
    return out
