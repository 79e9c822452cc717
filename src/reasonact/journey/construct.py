"""Reasoning-tree construction by a propose–critique loop (O1-Journey §4; Qin et al. 2024).

At the current node the policy proposes `width` next steps; the critic judges each
(`critic.Verdict`). The loop then

* stops at a step the critic `terminate`s (a final answer it accepts; its `continue` on one counts too);
* goes on from the first step it lets `continue` (the most likely one, by log-prob);
* otherwise stays and proposes again — up to `attempts` rounds per node — and then backtracks
  to the parent, marking the node a dead end (its own step becomes a failed branch).

Failed branches are negative signal twice over: a rejected step is never accepted at that node
again (the tree keeps it with score 0, the data `dpo_pairs.step_pairs` turns into rejected steps),
and in the **two-agent dialogue** mode the critic's replies are part of what the policy reads
next — the policy agent sees `Wait: <reason>` lines after its rejected proposals (the journey
format of `derive`), so the tree grows while the two agents talk and the dialogue is recorded.

Many problems are built in lockstep: each round asks the backend once for all their proposals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonact.journey.critic import Critic, Verdict, reflection
from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Tree


@dataclass(frozen=True)
class ConstructConfig:
    width: int = 3  # proposals per round at the current node
    attempts: int = 2  # proposal rounds at a node before backtracking from it
    max_steps: int = 6  # depth limit; a node this deep is a dead end unless it answered
    max_step_tokens: int = 24  # tokens per proposed step
    temperature: float = 1.0  # sampling temperature of the policy
    max_rounds: int = 24  # proposal rounds per tree (the budget)
    dialogue: bool = False  # two-agent mode: the policy reads the critic's replies to its rejected steps
    seed: int = 0  # sampling seed

    def __post_init__(self) -> None:
        for name in ("width", "attempts", "max_steps", "max_step_tokens", "max_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")


@dataclass
class JourneyTree:
    tree: Tree  # every proposed step; node.score = 1 accepted, 0 rejected
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # node id → the critic's verdict on its step
    order: list[int] = field(default_factory=list)  # node ids in the order the critic judged them
    dead: list[int] = field(default_factory=list)  # accepted nodes later abandoned (backtracked from)
    dialogue: list[tuple[str, str]] = field(default_factory=list)  # (speaker, message): policy / critic
    answer_node: int | None = None  # the terminating node (an answer the critic accepted), None if none was

    def to_json(self) -> dict[str, Any]:
        return {
            "tree": self.tree.to_json(),
            "verdicts": {str(k): [v.action, v.reason] for k, v in self.verdicts.items()},
            "order": self.order,
            "dead": self.dead,
            "dialogue": self.dialogue,
            "answer_node": self.answer_node,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JourneyTree:
        verdicts = {int(k): Verdict(a, r) for k, (a, r) in data["verdicts"].items()}
        dialogue = [tuple(x) for x in data["dialogue"]]
        return cls(Tree.from_json(data["tree"]), verdicts, data["order"], data["dead"], dialogue, data["answer_node"])

    def rejected(self, node_id: int) -> list[int]:
        """Children of `node_id` the critic rejected, in the order they were judged."""
        kids = set(self.tree.nodes[node_id].children)
        return [i for i in self.order if i in kids and not self.verdicts[i].accepts]


class _Builder:
    """One problem's loop: which state to propose from next, and what to do with the proposals."""

    def __init__(self, problem: Problem, config: ConstructConfig) -> None:
        self.jt = JourneyTree(Tree(problem))
        self.config = config
        self.node = 0  # current node
        self.tries: dict[int, int] = {}  # proposal rounds spent per node
        self.done = False

    def context(self) -> State:
        """What the policy reads: the path, plus (dialogue mode) the critic's replies at this node."""
        steps = list(self.jt.tree.steps(self.node))
        if self.config.dialogue:
            for i in self.jt.rejected(self.node):
                steps += [self.jt.tree.nodes[i].step, reflection(self.jt.verdicts[i])]
        return State(self.jt.tree.problem, tuple(steps))

    def receive(self, generations, critic: Critic) -> None:
        tree, node = self.jt.tree, self.node
        self.tries[node] = self.tries.get(node, 0) + 1
        seen = {tree.nodes[c].step for c in tree.nodes[node].children}
        fresh = []
        for g in generations:
            step = g.text.strip()
            if step in seen and g.failure is None:
                continue  # a step already judged here: the critic's verdict stands
            seen.add(step)
            fresh.append(tree.add(node, step, list(g.token_ids), g.logprob, g.failure))
        usable = [c for c in fresh if c.failure is None]
        verdicts = dict(zip((c.id for c in usable), critic.judge([tree.state(c.id) for c in usable]), strict=True))
        for child in fresh:
            verdict = verdicts.get(child.id, Verdict("backtrack", child.failure or ""))
            if verdict.action == "continue" and child.answer is not None:
                verdict = Verdict("terminate", verdict.reason)  # an LM critic's "continue" on a final answer
            elif verdict.action == "continue" and tree.depth(child.id) >= self.config.max_steps:
                verdict = Verdict("backtrack", "too many steps")
            child.score = 1.0 if verdict.accepts else 0.0
            self.jt.verdicts[child.id] = verdict
            self.jt.order.append(child.id)
            self.jt.dialogue += [("policy", child.step), ("critic", f"{verdict.action}: {verdict.reason}".rstrip(": "))]
        ranked = sorted(fresh, key=lambda c: -c.logprob)
        if stop := next((c for c in ranked if self.jt.verdicts[c.id].action == "terminate"), None):
            self.jt.answer_node = stop.id if stop.answer is not None else None
            self.done = True
        elif go := next((c for c in ranked if self.jt.verdicts[c.id].action == "continue"), None):
            self.node = go.id
        elif self.tries[node] >= self.config.attempts:
            if node == 0:
                self.done = True  # nothing left to try at the root
            else:
                self.jt.dead.append(node)
                self.jt.dialogue.append(("critic", "backtrack: no step from here works"))
                self.node = tree.nodes[node].parent


def construct_trees(
    problems: Sequence[Problem], backend: Backend, critic: Critic, config: ConstructConfig
) -> list[JourneyTree]:
    """Build one tree per problem, all problems advancing together (one backend call per round)."""
    builders = [_Builder(p, config) for p in problems]
    for round_ in range(config.max_rounds):
        live = [b for b in builders if not b.done]
        if not live:
            break
        seed = config.seed * 100_003 + round_
        generations = backend.generate_steps(
            [b.context() for b in live], config.width, config.max_step_tokens, config.temperature, seed
        )
        for builder, samples in zip(live, generations, strict=True):
            builder.receive(samples, critic)
    return [b.jt for b in builders]
