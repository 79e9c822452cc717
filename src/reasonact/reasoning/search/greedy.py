"""Greedy chain of thought: one temperature-0 step at a time until an answer (Wei et al. 2022)."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Tree


def greedy(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer | None = None) -> SearchResult:
    expander = Expander(Tree(problem), config, backend, scorer)
    node = expander.tree.root
    while not node.terminal and not expander.over_budget():
        [[node]] = expander.expand([node.id], 1, temperature=0.0)  # over_budget() is False: one step fits
    return expander.result(node if node.answer is not None and node.failure is None else None)
