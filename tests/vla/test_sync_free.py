"""No host synchronisation inside KI-VLA inference (issue 15): past the input checks at the public boundary,
`sample_actions` (prefix pass + Euler loop) and `sample_fast` (prefix pass + greedy FAST decode into a
preallocated KV buffer, allocated or reused) never read a tensor back to the host, so on a GPU they queue
kernels without waiting. Checked on the CPU by recording
every call that would synchronise a device (`.item()`, `bool(t)`, `.cpu()`, `.tolist()`, `.numpy()`,
`int(t)`, `float(t)`, `t.__index__`) with a `TorchFunctionMode`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

import reasonact.vla.model as model_module
from reasonact.vla.config import TINY
from reasonact.vla.model import build_model

SYNCS = {"item", "__bool__", "cpu", "tolist", "numpy", "__index__", "__int__", "__float__"}


class SyncRecorder(TorchFunctionMode):
    """Records the name of every host-reading tensor call made while `armed`."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.syncs: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if self.armed and name in SYNCS:
            self.syncs.append(name)
        return func(*args, **(kwargs or {}))

    @contextmanager
    def disarmed(self) -> Iterator[None]:
        self.armed = False
        try:
            yield
        finally:
            self.armed = True


def _outside(recorder: SyncRecorder, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run with the recorder disarmed: the boundary checks and the host-side decode after the loop."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with recorder.disarmed():
            return fn(*args, **kwargs)

    return wrapped


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> SyncRecorder:
    rec = SyncRecorder()
    for name in ("check_observation", "check_actions"):
        monkeypatch.setattr(model_module, name, _outside(rec, getattr(model_module, name)))
    return rec


def test_the_recorder_sees_every_kind_of_sync() -> None:
    t = torch.ones(3)
    with SyncRecorder() as rec:
        bool(t.all()), t[0].item(), t.tolist(), t.cpu(), t.numpy(), int(t[0]), float(t[0]), [0, 1][t.long()[0]]
    assert set(rec.syncs) == SYNCS


@pytest.mark.parametrize("cache_prefix", [True, False], ids=["cached", "recomputed"])
@pytest.mark.parametrize("variant", ["ki", "pi0"])
def test_sample_actions_never_synchronises(recorder, make_obs, fast, variant: str, cache_prefix: bool) -> None:
    cfg = dataclasses.replace(TINY, variant=variant)
    model = build_model(cfg, fast).eval()
    obs = make_obs(cfg)
    with recorder:
        chunk = model.sample_actions(obs, cache_prefix=cache_prefix)
    assert recorder.syncs == []
    assert chunk.shape == (2, cfg.horizon, cfg.action_dim) and torch.isfinite(chunk).all()


def test_fast_decoding_never_synchronises_and_stops_by_done_mask(recorder, make_obs, fast, monkeypatch) -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, variant="pi0_fast")
    model = build_model(cfg, fast).eval()
    obs = make_obs(cfg)
    generated: list[torch.Tensor] = []
    strip = model._strip
    monkeypatch.setattr(model, "_strip", _outside(recorder, lambda ids: generated.append(ids) or strip(ids)))
    with recorder:
        decoded = model.sample_fast(obs, max_tokens=10)
    assert recorder.syncs == []
    assert generated[0].shape == (2, 10)  # a fixed number of steps ...
    buffer = model._fast_buffer  # the preallocated K/V of the decode ...
    with torch.no_grad():  # ... where, once a sample has emitted EOA, it keeps emitting EOA
        model.lm.embed.weight[cfg.eoa] *= 50.0  # make EOA the greedy choice from the first token on
    with recorder:
        model.sample_fast(obs, max_tokens=10)
    assert recorder.syncs == [] and model._fast_buffer is buffer  # reused (same shapes), still no sync
    assert (generated[1] == cfg.eoa).all()
    assert decoded.actions.shape == (2, cfg.horizon, cfg.action_dim)


def test_fast_decoding_checks_for_eoa_once_every_k_tokens(recorder, make_obs, fast, monkeypatch) -> None:
    cfg = dataclasses.replace(TINY, variant="pi0_fast")
    model = build_model(cfg, fast).eval()
    with torch.no_grad():
        model.lm.embed.weight[cfg.eoa] *= 50.0  # every sample is done after its first token
    generated: list[torch.Tensor] = []
    strip = model._strip
    monkeypatch.setattr(model, "_strip", _outside(recorder, lambda ids: generated.append(ids) or strip(ids)))
    with recorder:
        model.sample_fast(make_obs(cfg), max_tokens=12, check_every=4)
    assert recorder.syncs == ["__bool__"]  # one check, after 4 tokens: all done, stop
    assert generated[0].shape == (2, 4)
    with pytest.raises(ValueError, match="check_every: expected a positive number of tokens or None, received 0"):
        model.sample_fast(make_obs(cfg), check_every=0)
