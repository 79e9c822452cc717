"""Step-level beam search with a PRM (Snell et al. 2024 §5.2; search-and-learn `beam_search`).

Keep K = N / M beams; each expansion samples M next steps per beam (N from the root, which stands
for all K beams at the start), the scorer rates them and the K best unfinished paths survive.
Paths that reach an answer leave the beam; the search ends when K paths finished, no beam is left,
or the budget is spent. The answer is chosen among the finished paths by `config.selection`."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult, select
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Tree


def beam_search(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer) -> SearchResult:
    if scorer is None:
        raise ValueError("scorer: beam search needs a step scorer, received None")
    keep = max(1, config.n // config.width)
    expander = Expander(Tree(problem), config, backend, scorer)
    beams, per_beam = [expander.tree.root], keep * config.width  # the root stands for all K beams
    finished = []
    while beams and len(finished) < keep and not expander.over_budget():
        children = [c for kids in expander.expand([b.id for b in beams], per_beam) for c in kids]
        per_beam = config.width
        finished += [c for c in children if c.answer is not None and c.failure is None]
        candidates = sorted((c for c in children if not c.terminal), key=lambda c: -expander.path_score(c.id))
        beams = candidates[: keep - len(finished)]
    return expander.result(select(expander, finished, config.selection), finished=len(finished))
