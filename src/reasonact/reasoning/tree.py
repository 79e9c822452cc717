"""One search tree for every search method: nodes are MDP states reached by one generated step.

A node stores the step's text and token ids, its log-probability under the policy, the step
scorer's score, MCTS statistics (visits, value sum) and an explicit failure record (empty or
truncated generation, prompt too long) instead of raising mid-search. `to_json`/`from_json` keep
everything but the backend's KV-cache handle, so trees can be inspected and used as training data
(PRM labels, journeys)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonact.atomic import atomic_write_json, read_json
from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks.base import Problem, answer_of


@dataclass
class Node:
    id: int  # index in Tree.nodes
    parent: int | None  # None for the root (the bare question)
    step: str = ""  # the action that led here ("" at the root)
    token_ids: list[int] = field(default_factory=list)  # generated tokens of the step (incl. the boundary)
    logprob: float = 0.0  # Σ log π(token) of the step
    score: float | None = None  # step scorer's score of this step (PRM / oracle), None until scored
    visits: int = 0  # N(s) for MCTS
    value_sum: float = 0.0  # W(s) for MCTS: Q(s) = W / N
    children: list[int] = field(default_factory=list)
    failure: str | None = None  # why this step is unusable ("empty", "length", "too_long"), None if fine
    kv: Any = field(default=None, repr=False, compare=False)  # backend KV-cache handle, never serialised

    @property
    def answer(self) -> str | None:
        return answer_of(self.step) if self.parent is not None else None

    @property
    def terminal(self) -> bool:
        return self.answer is not None or self.failure is not None

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


@dataclass
class Tree:
    problem: Problem
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(Node(0, None))

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add(self, parent: int, step: str, token_ids: list[int], logprob: float, failure: str | None = None) -> Node:
        node = Node(len(self.nodes), parent, step, list(token_ids), float(logprob), failure=failure)
        self.nodes.append(node)
        self.nodes[parent].children.append(node.id)
        return node

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the root's first child down to `node_id`."""
        path = []
        node = self.nodes[node_id]
        while node.parent is not None:
            path.append(node)
            node = self.nodes[node.parent]
        return path[::-1]

    def steps(self, node_id: int) -> tuple[str, ...]:
        return tuple(n.step for n in self.path(node_id))

    def state(self, node_id: int) -> State:
        return State(self.problem, self.steps(node_id))

    def depth(self, node_id: int) -> int:
        return len(self.path(node_id))

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if not n.children and n.parent is not None]

    def answers(self) -> list[Node]:
        """Terminal nodes that carry a final answer."""
        return [n for n in self.nodes if n.answer is not None and n.failure is None]

    def generated_tokens(self) -> int:
        return sum(len(n.token_ids) for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        nodes = [{k: v for k, v in asdict(n).items() if k != "kv"} for n in self.nodes]
        return {"problem": asdict(self.problem), "nodes": nodes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tree:
        problem = dict(data["problem"])
        problem["steps"] = tuple(problem["steps"])
        return cls(Problem(**problem), [Node(**n) for n in data["nodes"]])

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Tree:
        return cls.from_json(read_json(path))
