"""Build a reasoning tree, then traverse it depth first (O1-Journey, Qin et al. 2024, "O1
Replication Journey", §4–5: the inference mode that derives a long thought from a tree).

Construction: level by level, N first steps from the root, then the best (by scorer) unfinished
nodes, at most N per level, with M children each. Traversal: depth first from the root, children in score order; a
step scoring below `threshold` is a dead end, recorded and backtracked from, exactly the wrong
turns a "journey" keeps and a "shortcut" drops. The first answer reached with a passing score is
returned; `extra["journey"]` lists (node, "step" | "backtrack") in visiting order."""

from __future__ import annotations

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Node, Tree


def build_tree(expander: Expander, config: SearchConfig) -> None:
    frontier, per_node = [expander.tree.root], config.n  # the root gets N first steps, later nodes M
    while frontier and not expander.over_budget():
        children = [c for kids in expander.expand([f.id for f in frontier], per_node) for c in kids]
        alive = [c for c in children if expander.live(c)]
        frontier = sorted(alive, key=lambda c: -expander.path_score(c.id))[: config.n]
        per_node = config.width


def dfs(expander: Expander, threshold: float) -> tuple[Node | None, list[tuple[int, str]]]:
    journey: list[tuple[int, str]] = []

    def visit(node: Node) -> Node | None:
        for child_id in sorted(node.children, key=lambda i: -(expander.tree.nodes[i].score or 0.0)):
            child = expander.tree.nodes[child_id]
            if child.failure is not None or (child.score or 0.0) < threshold:
                journey.append((child.id, "backtrack"))
                continue
            journey.append((child.id, "step"))
            if child.answer is not None:
                return child
            found = visit(child)
            if found is not None:
                return found
            journey.append((child.id, "backtrack"))
        return None

    return visit(expander.tree.root), journey


def tree_dfs(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer) -> SearchResult:
    if scorer is None:
        raise ValueError("scorer: tree+DFS needs a step scorer to rank and prune steps, received None")
    expander = Expander(Tree(problem), config, backend, scorer)
    build_tree(expander, config)
    answer, journey = dfs(expander, config.threshold)
    return expander.result(answer, journey=journey)
