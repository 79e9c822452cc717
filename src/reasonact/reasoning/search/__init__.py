"""Test-time search methods, all `fn(problem, config, backend, scorer) -> SearchResult`."""

from __future__ import annotations

from collections.abc import Callable

from reasonact.reasoning.search.beam import beam_search
from reasonact.reasoning.search.best_of_n import best_of_n
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult, select
from reasonact.reasoning.search.dvts import dvts
from reasonact.reasoning.search.greedy import greedy
from reasonact.reasoning.search.mcts import mcts
from reasonact.reasoning.search.tree_dfs import tree_dfs

SearchFn = Callable[..., SearchResult]
SEARCHES: dict[str, SearchFn] = {
    "greedy": greedy,
    "best_of_n": best_of_n,
    "beam": beam_search,
    "dvts": dvts,
    "mcts": mcts,
    "tree_dfs": tree_dfs,
}

__all__ = [
    "SEARCHES",
    "Expander",
    "SearchConfig",
    "SearchResult",
    "beam_search",
    "best_of_n",
    "dvts",
    "greedy",
    "mcts",
    "select",
    "tree_dfs",
]
