"""The real Gemma 3 270M behind HFBackend: batched prefix-reusing generation equals per-path
`generate` on real weights and the real 262k-token tokenizer."""

from __future__ import annotations

import pytest

from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks import make_task


@pytest.mark.slow
def test_gemma_batched_equals_per_path_and_stops_at_step_boundary() -> None:
    from reasonact.reasoning.backends.gemma import gemma_backend

    backend = gemma_backend("arithmetic", shots=2, difficulty="easy")
    problems = make_task("arithmetic", "easy").generate("test", 2)
    states = [State(problems[0]), State(problems[1], problems[1].steps[:1])]
    batched = backend.generate_steps(states, 3, max_new_tokens=12, temperature=0.8, seed=1)
    again = backend.generate_steps(states, 3, max_new_tokens=12, temperature=0.8, seed=1)  # from the KV store
    reference = backend.generate_texts_per_path([s.prompt(backend.header) for s in states], 3, 12, 0.8, 1)
    as_ids = [[g.token_ids for g in row] for row in batched]
    assert as_ids == [[g.token_ids for g in row] for row in reference]
    assert as_ids == [[g.token_ids for g in row] for row in again] and backend.store.hits > 0
    for g in [g for row in batched for g in row]:
        assert "\n" not in g.text and len(g.logprobs) == len(g.token_ids)
    assert sum(g.finish == "stop" for row in batched for g in row) >= 3  # the few-shot format is followed
