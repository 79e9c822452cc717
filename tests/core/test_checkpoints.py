"""Run directories and checkpoints: atomic writes, exact resume, clear errors."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from reasonact import checkpoints
from reasonact.runs import Run


@dataclass(frozen=True)
class ToyConfig:
    steps: int = 12
    lr: float = 0.05
    device: str = "cpu"


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))


def _train(run: Run, stop_at: int | None = None, save_every: int = 4) -> torch.nn.Module:
    """A toy loop whose batches, dropout and noise all come from the global RNGs."""
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=ToyConfig.lr)
    step, _ = run.restore(model, opt)
    if step == 0:
        torch.manual_seed(1), np.random.seed(1), random.seed(1)
    while step < ToyConfig.steps:
        x = torch.randn(16, 3)
        y = x.sum(-1, keepdim=True) + float(np.random.normal()) * 0.01 + random.random() * 0.01
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        run.log(step, loss=loss.item())
        if step % save_every == 0:
            run.save(step, model, opt)
        if step == stop_at:
            break
    return model


def test_resume_is_bit_exact(tmp_path) -> None:
    straight = _train(Run.open(tmp_path, "straight", ToyConfig()))
    _train(Run.open(tmp_path, "resumed", ToyConfig()), stop_at=6)  # "crash" after step 6, last save at 4
    resumed = _train(Run.open(tmp_path, "resumed", ToyConfig(), resume=True))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    straight_log = Run(tmp_path / "straight").metrics()
    resumed_log = Run(tmp_path / "resumed").metrics()
    assert resumed_log == straight_log  # metrics after the checkpoint were rolled back, not duplicated
    assert [m["step"] for m in resumed_log] == list(range(1, 13))


def test_losses_decrease_and_plot_is_written(tmp_path) -> None:
    run = Run.open(tmp_path, "toy", ToyConfig())
    _train(run)
    losses = [m["loss"] for m in run.metrics()]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert run.plot_metrics(["loss"]).stat().st_size > 1000


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch) -> None:
    run = Run.open(tmp_path, "toy", ToyConfig())
    model = _model()
    run.save(1, model)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        run.save(2, model)
    assert run.latest().name == "step_000000001"
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest", "step_000000001"]


def test_keep_last_prunes_old_checkpoints(tmp_path) -> None:
    run = Run.open(tmp_path, "toy", ToyConfig())
    model = _model()
    for step in range(1, 5):
        run.save(step, model)
    assert sorted(p.name for p in run.checkpoints.glob("step_*")) == ["step_000000003", "step_000000004"]


def test_keep_every_also_keeps_checkpoints_on_its_schedule(tmp_path) -> None:
    run = Run.open(tmp_path, "toy", ToyConfig())
    run.keep_every = 3
    model = _model()
    for step in range(1, 9):
        run.save(step, model)
    kept = sorted(int(p.name.split("_")[1]) for p in run.checkpoints.glob("step_*"))
    assert kept == [3, 6, 7, 8] and run.latest().name == "step_000000008"


def test_resume_on_another_device_updates_the_recorded_config(tmp_path) -> None:
    """Where a run executes (LAUNCH_FIELDS) may change on resume: a run moves between machines."""
    Run.open(tmp_path, "toy", ToyConfig())
    Run.open(tmp_path, "toy", ToyConfig(device="cuda"), resume=True)
    assert (tmp_path / "toy" / "config.json").read_text().count('"cuda"') == 1
    with pytest.raises(ValueError, match=r"config: differs .* \['device', 'lr'\]"):
        Run.open(tmp_path, "toy", ToyConfig(lr=0.1), resume=True)


def test_resume_with_changed_config_names_the_field(tmp_path) -> None:
    Run.open(tmp_path, "toy", ToyConfig())
    with pytest.raises(ValueError, match=r"config: differs .* \['lr'\]"):
        Run.open(tmp_path, "toy", ToyConfig(lr=0.1), resume=True)
    with pytest.raises(FileExistsError, match="name: run directory"):
        Run.open(tmp_path, "toy", ToyConfig())


def test_checkpoint_for_another_model_is_refused(tmp_path) -> None:
    checkpoints.save_checkpoint(tmp_path / "ck", 1, _model())
    with pytest.raises(ValueError, match=r"model.safetensors: does not match the model"):
        checkpoints.load_checkpoint(tmp_path / "ck", torch.nn.Linear(3, 1))


def test_corrupted_state_json_names_the_file(tmp_path) -> None:
    checkpoints.save_checkpoint(tmp_path / "ck", 1, _model())
    (tmp_path / "ck" / "state.json").write_text("{")
    with pytest.raises(ValueError, match=r"state.json: corrupted JSON"):
        checkpoints.load_checkpoint(tmp_path / "ck", _model())
