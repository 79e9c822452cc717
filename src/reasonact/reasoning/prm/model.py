"""Process reward models on a causal LM (SPEC §3.2), and the learned step scorer.

`PRM` = a transformers causal-LM body (the step-writing policy's, so it starts from what the
policy knows) + a linear head giving one logit per token; only the logits at step ends (the
boundary token closing each step) are used. Three kinds share the model and differ in the loss
(`training/prm.py`):

* `classifier` — per-step correct/incorrect, cross-entropy at every step end (Lightman et al. 2023;
  Math-Shepherd), soft labels allowed;
* `value` — V_θ(s_t) = σ(logit) trained by TD(0): target r_t + γ·V_θ(s_{t+1}) (no gradient through
  the target), r = the outcome at the final step, V after the final step = 0;
* `orm` — outcome reward model: one cross-entropy on the final step end with the outcome label
  (Cobbe et al. 2021), the comparison PRMs are measured against.

`LearnedScorer` plugs a trained PRM into every search method as a `StepScorer`: σ(logit) at each
step end of each state, in batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_model, save_model

from reasonact.atomic import atomic_directory, read_json
from reasonact.reasoning.mdp import STEP_BOUNDARY, State, render
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.tasks import Problem

Kind = Literal["classifier", "value", "orm"]
KINDS: tuple[Kind, ...] = ("classifier", "value", "orm")


class PRM(torch.nn.Module):
    def __init__(self, body: torch.nn.Module, kind: Kind) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, received {kind!r}")
        self.body, self.kind = body, kind
        self.head = torch.nn.Linear(body.config.hidden_size, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (b, s), mask (b, s) → one logit per position (b, s)."""
        hidden = self.body(input_ids=ids, attention_mask=mask).last_hidden_state  # (b, s, d)
        return self.head(hidden).squeeze(-1)

    @classmethod
    def from_policy(cls, policy_dir: str | Path, kind: Kind) -> PRM:
        """The policy's transformer body (its LM head dropped) + a fresh zero-initialised head."""
        from transformers import AutoModel

        prm = cls(AutoModel.from_pretrained(policy_dir), kind)
        torch.nn.init.zeros_(prm.head.weight)
        torch.nn.init.zeros_(prm.head.bias)
        return prm

    def save(self, path: str | Path, tokenizer, extra: dict | None = None) -> None:
        """Atomic directory: body config, tokenizer, `prm.safetensors`, `prm.json` (kind, extra)."""
        with atomic_directory(path) as tmp:
            self.body.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_model(self, str(tmp / "prm.safetensors"))
            (tmp / "prm.json").write_text(json.dumps({"kind": self.kind} | (extra or {}), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> tuple[PRM, object]:
        """→ (PRM in eval mode, its tokenizer)."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / "prm.json").is_file():
            raise FileNotFoundError(f"prm: {path} is not a PRM directory (no prm.json)")
        prm = cls(AutoModel.from_config(AutoConfig.from_pretrained(path)), read_json(path / "prm.json")["kind"])
        load_model(prm, str(path / "prm.safetensors"))
        return prm.eval(), AutoTokenizer.from_pretrained(path)


def encode(tokenizer, problem: Problem, steps: Sequence[str], max_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids of question + steps (each closed by the boundary) and the index of each step's
    last token (its boundary) → (ids, ends). Refuses sequences longer than `max_tokens`."""
    ids = list(tokenizer(render(problem))["input_ids"])
    ends = []
    for step in steps:
        ids += tokenizer(step + STEP_BOUNDARY, add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    if len(ids) > max_tokens:
        raise ValueError(f"{problem.uid}: question + steps take {len(ids)} tokens, the PRM's context is {max_tokens}")
    return ids, ends


def batch(rows: Sequence[tuple[list[int], list[int]]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (b, s) and attention mask (b, s)."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (row, _) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


class LearnedScorer(StepScorer):
    """A trained PRM as the step scorer of a search: σ(logit) at every step end."""

    def __init__(self, path: str | Path, batch_size: int = 32) -> None:
        self.prm, self.tokenizer = PRM.load(path)
        self.max_tokens = int(self.prm.body.config.max_position_embeddings)
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, states: Sequence[State]) -> list[list[float]]:
        encoded = [encode(self.tokenizer, s.problem, s.steps, self.max_tokens) for s in states]
        out: list[list[float]] = []
        for at in range(0, len(encoded), self.batch_size):
            chunk = encoded[at : at + self.batch_size]
            ids, mask = batch(chunk, self.tokenizer.pad_token_id)
            probs = torch.sigmoid(self.prm(ids, mask))  # (b, s)
            out += [probs[i, ends].tolist() for i, (_, ends) in enumerate(chunk)]
        return out
