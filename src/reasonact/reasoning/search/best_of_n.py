"""Best-of-N: N independent samples, then majority vote / PRM-weighted vote / PRM argmax
(Cobbe et al. 2021; Wang et al. 2023 self-consistency; Snell et al. 2024 §5.1).

The N paths are sampled step by step (all live paths in one batched call per depth), so they
form a tree with N branches at the root and share the question's KV."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult, select
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Tree


def best_of_n(
    problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer | None = None
) -> SearchResult:
    if config.selection != "majority" and scorer is None:
        raise ValueError(f"scorer: selection={config.selection!r} needs a step scorer, received None")
    expander = Expander(Tree(problem), config, backend, scorer)
    [live] = expander.expand([0], config.n)
    while not expander.over_budget():
        live = [n for n in live if not n.terminal]
        if not live:
            break
        live = [k for kids in expander.expand([n.id for n in live], 1) for k in kids]
    finished = expander.tree.answers()
    return expander.result(select(expander, finished, config.selection), finished=len(finished))
