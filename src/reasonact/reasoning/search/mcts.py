"""Monte Carlo tree search over steps with PUCT, policy rollouts and PRM-gated widening (Silver
et al. 2017; rollouts kept in the tree as in rStar, Qi et al. 2024; dead lines skipped as in
MCTS-Solver, Winands et al. 2008): the policy's log-probs give the priors, rollouts give the
values, the step scorer decides which steps are dead ends.

A step is *dead* when it is terminal (answered or failed) or scores below `threshold` (as in
tree+DFS); every other node is *live* (`Expander.live`). One simulation is one rollout. Each iteration

1. selects from the root through live children by
   a* = argmax_c Q(c) + c_puct · P(c) · √N(s) / (1 + N(c)),
   with P = softmax over the live siblings of the length-normalised step log-probability and
   Q(c) = W(c)/N(c), down to the first node to widen: one without a live child (the deepest
   point of the chosen line, right before its dead end), or one whose best live child has a low
   value (max Q < `widen_below`, fewer than `max_children` children, at least two visits per
   child so far) — with a noisy learned PRM a step it wrongly passes would otherwise be the
   node's only way on, forever;
2. widens it with `width` new steps in one batched call (fewer if fewer simulations are left),
   so the budget goes where the line broke or looks bad, not into re-sampling good steps;
3. rolls every new step out with the policy, one sampled step per call for all of them at once,
   until it answers, fails, hits `max_steps` or takes a dead step; rollout steps stay in the
   tree, so later simulations branch off them and their answers are candidates;
4. backs up each rollout's value, the scorer's path score where it ended (0 for a failure),
   along its whole path.

The search ends after `simulations` rollouts or at the token budget (never passed). A simulation generates at
most one solution's worth of tokens, like one best-of-N sample, and shares every prefix it
branches from; a rollout that dies early costs less. Answers are chosen among every finished
path in the tree by `config.selection`; `extra["branched"]` lists (node, first new child, why:
"leaf" | "dead" | "low_value") of every widening in order."""

from __future__ import annotations

import math

import torch

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.search.common import Expander, SearchConfig, SearchResult, select
from reasonact.reasoning.tasks.base import Problem
from reasonact.reasoning.tree import Node, Tree


def priors(children: list[Node]) -> list[float]:
    """P(c) ∝ exp(mean token log-prob of step c) over siblings."""
    logits = torch.tensor([c.logprob / max(1, len(c.token_ids)) for c in children])  # (k,)
    return torch.softmax(logits, 0).tolist()


def puct_child(node: Node, children: list[Node], c_puct: float) -> Node:
    prior = priors(children)
    parent_visits = math.sqrt(max(1, node.visits))

    def value(c: Node, p: float) -> float:
        return c.q + c_puct * p * parent_visits / (1 + c.visits)

    return max(zip(children, prior, strict=True), key=lambda cp: value(*cp))[0]


class Search:
    """One MCTS run: selection over live steps (`Expander.live`), batched rollouts, backup."""

    def __init__(self, expander: Expander) -> None:
        self.expander, self.tree, self.config = expander, expander.tree, expander.config

    def live_children(self, node: Node) -> list[Node]:
        return [c for c in (self.tree.nodes[i] for i in node.children) if self.expander.live(c)]

    def select(self) -> tuple[Node, str]:
        """The node to widen and why ("leaf": no children yet, "dead": none live, "low_value")."""
        node = self.tree.root
        while kids := self.live_children(node):
            if self.low_value(node, kids):
                return node, "low_value"
            node = puct_child(node, kids, self.config.c_puct)
        return node, "dead" if node.children else "leaf"

    def low_value(self, node: Node, live: list[Node]) -> bool:
        """Widen `node` although it has live children: their best mean value is below
        `widen_below`, it has room (`max_children`), and its children have had two visits each on
        average (progressive widening: the lines below get explored before the node grows)."""
        return (
            len(node.children) < self.config.max_children
            and node.visits >= 2 * len(node.children)
            and max(c.q for c in live) < self.config.widen_below
        )

    def rollout(self, starts: list[Node]) -> list[Node]:
        """Extend every start by one sampled step per call until it is dead (or the budget is
        spent) → the node each rollout ended at."""
        ends = list(starts)
        while not self.expander.over_budget():
            live = [i for i, n in enumerate(ends) if self.expander.live(n)]
            if not live:
                break
            grown = self.expander.expand([ends[i].id for i in live], 1)
            if not any(grown):  # the budget allows no further step
                break
            for i, kids in zip(live, grown, strict=True):
                ends[i] = kids[0] if kids else ends[i]
        return ends

    def backup(self, end: Node) -> None:
        """One visit with the rollout's value for every node from `end` up to the root."""
        value = self.expander.path_score(end.id) if end.failure is None else 0.0
        node: Node | None = end
        while node is not None:
            node.visits += 1
            node.value_sum += value
            node = self.tree.nodes[node.parent] if node.parent is not None else None


def mcts(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer) -> SearchResult:
    if scorer is None:
        raise ValueError("scorer: MCTS needs a step scorer for values, received None")
    expander = Expander(Tree(problem), config, backend, scorer)
    search = Search(expander)
    simulations, branched = 0, []
    while simulations < config.simulations and not expander.over_budget():
        node, why = search.select()
        k = min(config.width, config.simulations - simulations)
        [new] = expander.expand([node.id], k)
        if not new:
            break
        branched.append((node.id, new[0].id, why))
        for end in search.rollout(new):
            search.backup(end)
        simulations += len(new)
    answer = select(expander, search.tree.answers(), config.selection)
    return expander.result(answer, simulations=simulations, branched=branched)
