"""Monte Carlo tree search over steps with PUCT (Silver et al. 2017; as used for LLM reasoning in
rStar / OpenR / "ReST-MCTS*"): the scorer supplies values, the policy's log-probs the priors.

Each simulation selects from the root by

    a* = argmax_c  Q(c) + c_puct · P(c) · √N(s) / (1 + N(c)),

with P = softmax over siblings of the length-normalised step log-probability and Q(c) the mean
backed-up value (the child's own PRM path score until it is visited); expands the selected leaf
with M sampled steps (scored on creation); and backs up the best new child's path score (a
one-step PRM lookahead instead of a rollout) along the selected path. Answers are chosen among
every finished path in the tree by `config.selection`."""

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


def puct_child(expander: Expander, node: Node, c_puct: float) -> Node:
    children = [expander.tree.nodes[i] for i in node.children]
    prior = priors(children)
    root_visits = math.sqrt(max(1, node.visits))

    def value(c: Node, p: float) -> float:
        q = c.q if c.visits else expander.path_score(c.id)
        return q + c_puct * p * root_visits / (1 + c.visits)

    return max(zip(children, prior, strict=True), key=lambda cp: value(*cp))[0]


def mcts(problem: Problem, config: SearchConfig, backend: Backend, scorer: StepScorer) -> SearchResult:
    if scorer is None:
        raise ValueError("scorer: MCTS needs a step scorer for values, received None")
    expander = Expander(Tree(problem), config, backend, scorer)
    root = expander.tree.root
    simulations = 0
    while simulations < config.simulations and not expander.over_budget():
        path = [root]
        while path[-1].children:
            path.append(puct_child(expander, path[-1], config.c_puct))
        leaf = path[-1]
        if leaf.terminal:
            value = expander.path_score(leaf.id) if leaf.failure is None else 0.0
        else:
            [children] = expander.expand([leaf.id], config.width)
            value = max(expander.path_score(c.id) for c in children)
        for node in path:
            node.visits += 1
            node.value_sum += value
        simulations += 1
        if all(n.terminal for n in expander.tree.leaves()):
            break  # the tree is complete: nothing left to expand
    finished = expander.tree.answers()
    return expander.result(select(expander, finished, config.selection), simulations=simulations)
