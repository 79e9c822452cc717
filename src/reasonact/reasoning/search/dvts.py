"""Diverse verifier tree search (Beeching et al. 2024, search-and-learn `dvts`).

Split the N-sample budget into N / M independent subtrees; in each, the scorer keeps the best of
M sampled next steps (a greedy, verifier-guided chain). Independent subtrees keep diversity that
beam search loses when a few prefixes dominate. The answer is chosen among the subtrees' leaves."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult, select
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Tree


def dvts(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer) -> SearchResult:
    if scorer is None:
        raise ValueError("scorer: DVTS needs a step scorer, received None")
    subtrees = max(1, config.n // config.width)
    expander = Expander(Tree(problem), config, backend, scorer)
    [first] = expander.expand([0], subtrees * config.width)
    groups = [first[i * config.width : (i + 1) * config.width] for i in range(subtrees)]
    heads = [max(g, key=lambda c: expander.path_score(c.id)) for g in groups if g]
    while not expander.over_budget():
        live = [h for h in heads if not h.terminal]
        if not live:
            break
        best = {
            h.id: max(kids, key=lambda c: expander.path_score(c.id))
            for h, kids in zip(live, expander.expand([h.id for h in live], config.width), strict=True)
            if kids
        }
        if not best:
            break
        heads = [best.get(h.id, h) for h in heads]
    finished = [h for h in heads if h.answer is not None and h.failure is None]
    return expander.result(select(expander, finished, config.selection), finished=len(finished))
