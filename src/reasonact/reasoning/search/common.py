"""What every search method shares: its config, its result, and the expand / score / select steps.

Every method has the signature `search(problem, config, backend, scorer) -> SearchResult`
(search-and-learn's convention), builds one `Tree`, and counts the tokens it generated, so
methods are compared at equal generated-token budgets (Snell et al. 2024, "Scaling LLM
Test-Time Compute Optimally…", §3–5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import Aggregation, StepScorer, aggregate
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tasks.base import answer_of
from reasonact.reasoning.tree import Node, Tree

Selection = Literal["majority", "weighted", "argmax"]


@dataclass(frozen=True)
class SearchConfig:
    n: int = 8  # N: samples (best-of-N), beams (beam search), or subtrees × width (DVTS)
    width: int = 4  # M: children per expanded node (beam, DVTS, MCTS, tree+DFS)
    max_steps: int = 8  # depth limit: a path without an answer by then is a failure
    max_step_tokens: int = 48  # tokens per step before it is cut ("length" failure)
    temperature: float = 1.0  # sampling temperature (0 = greedy)
    aggregation: Aggregation = "last"  # per-step PRM scores → one path score
    selection: Selection = "weighted"  # final answer among finished paths
    simulations: int = 16  # MCTS simulations (rollouts from the root to a final answer)
    c_puct: float = 1.5  # MCTS exploration constant c in PUCT
    threshold: float = 0.5  # tree+DFS and MCTS: a step scoring below this is a dead end
    widen_below: float = 0.25  # MCTS: widen a node whose best live child's mean value Q is below this
    max_children: int = 16  # MCTS: children per node at most (widening stops there)
    token_budget: int | None = None  # generated tokens a search may spend, never exceeded (None: no cap)
    seed: int = 0  # sampling seed

    def __post_init__(self) -> None:
        for name in ("n", "width", "max_steps", "max_step_tokens", "simulations", "max_children"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget: expected >= 1 tokens or None, received {self.token_budget}")
        for name in ("threshold", "widen_below"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: expected a score in [0, 1], received {getattr(self, name)}")


@dataclass
class SearchResult:
    tree: Tree  # every node the search generated
    answer: str | None  # chosen final answer (None: no path finished)
    answer_node: int | None  # node that holds it
    tokens: int  # generated tokens
    calls: int  # backend calls (batched generate_steps)
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific record (e.g. the DFS journey)


class Expander:
    """Grows a tree through one backend, with per-search seeds and token accounting."""

    def __init__(self, tree: Tree, config: SearchConfig, backend: Backend, scorer: StepScorer | None) -> None:
        self.tree, self.config, self.backend, self.scorer = tree, config, backend, scorer
        self.calls = 0

    @property
    def tokens(self) -> int:
        return self.tree.generated_tokens()

    def affordable_steps(self) -> int | None:
        """Steps that can still be sampled without any chance of passing the token budget (each may
        take `max_step_tokens`); None without a budget."""
        if self.config.token_budget is None:
            return None
        return max(0, self.config.token_budget - self.tokens) // self.config.max_step_tokens

    def over_budget(self) -> bool:
        return self.affordable_steps() == 0

    def expand(self, node_ids: Sequence[int], n: int, temperature: float | None = None) -> list[list[Node]]:
        """Sample n children for each node → [node][child]; failures become terminal failure nodes.

        Under a token budget the call is trimmed so that it cannot pass it: fewer samples per node,
        then fewer nodes (their lists come back empty), so a search stops at its budget."""
        affordable = self.affordable_steps()
        if affordable is not None and len(node_ids) * n > affordable:
            n = max(1, min(n, affordable // max(1, len(node_ids))))
            kept = affordable // n
            return [*self.expand(node_ids[:kept], n, temperature), *([] for _ in node_ids[kept:])]
        if not node_ids:
            return []
        states = [self.tree.state(i) for i in node_ids]
        temperature = self.config.temperature if temperature is None else temperature
        seed = self.config.seed * 7919 + self.calls
        generations = self.backend.generate_steps(states, n, self.config.max_step_tokens, temperature, seed)
        self.calls += 1
        children = []
        for node_id, samples in zip(node_ids, generations, strict=True):
            depth = self.tree.depth(node_id) + 1
            kids = []
            for g in samples:
                failure = g.failure
                if failure is None and depth >= self.config.max_steps and answer_of(g.text) is None:
                    failure = "max_steps"
                kids.append(self.tree.add(node_id, g.text.strip(), list(g.token_ids), g.logprob, failure))
            children.append(kids)
        if self.scorer is not None:
            self.score([k for kids in children for k in kids])
        return children

    def score(self, nodes: Sequence[Node]) -> None:
        """Set node.score from the scorer; failed steps score 0."""
        live = [n for n in nodes if n.failure is None]
        for node, scores in zip(
            live, self.scorer.score([self.tree.state(n.id) for n in live]) if live else [], strict=True
        ):
            node.score = float(scores[-1])
        for node in nodes:
            if node.failure is not None:
                node.score = 0.0

    def live(self, node: Node) -> bool:
        """A step the search may continue: not terminal, and scored at least `threshold` (below it
        is a dead end)."""
        return not node.terminal and (node.score or 0.0) >= self.config.threshold

    def path_score(self, node_id: int) -> float:
        return aggregate(
            [n.score if n.score is not None else 0.0 for n in self.tree.path(node_id)], self.config.aggregation
        )

    def result(self, chosen: Node | None, **extra: Any) -> SearchResult:
        answer = chosen.answer if chosen is not None else None
        node = chosen.id if chosen is not None else None
        return SearchResult(self.tree, answer, node, self.tokens, self.calls, extra)


def select(expander: Expander, finished: Sequence[Node], how: Selection) -> Node | None:
    """Best-of-N selection (Snell et al. 2024 §5.1): majority vote, PRM-weighted vote, or PRM argmax."""
    if not finished:
        return None
    if how == "argmax":
        return max(finished, key=lambda n: expander.path_score(n.id))
    task = make_task(expander.tree.problem.family)  # answers vote together by the task's answer key
    votes: dict[str, float] = defaultdict(float)
    first: dict[str, Node] = {}
    for node in finished:
        key = task.answer_key(node.answer or "")
        votes[key] += 1.0 if how == "majority" else expander.path_score(node.id)
        first.setdefault(key, node)
    return first[max(votes, key=lambda k: votes[k])]
