"""`reasonact demo` end to end on shrunken sections: report written, KI gradients exactly insulated."""

from __future__ import annotations

import json

import pytest
import torch

from reasonact.actions.commands import ChunkSource
from reasonact.demo import ActingDemo, DemoConfig, main


def test_fast_and_vla_sections_write_a_report(tmp_path) -> None:
    torch.set_num_threads(1)
    config = DemoConfig(
        root=tmp_path,
        sections=("fast", "vla"),
        fast_source=ChunkSource(kind="smooth", trajectories=30, dim=4, steps=60),
        scales=(10.0, 20.0),
        acting=ActingDemo(tasks=("reach-v3",), episodes=2, max_steps=40, train_steps=8, batch=4),
    )
    report = main(config)
    numbers = json.loads((report.parent / "report.json").read_text())
    assert numbers["fast"]["compression_ratio"] > 1
    ki, pi0 = numbers["vla"]["variants"]["ki"], numbers["vla"]["variants"]["pi0"]
    assert ki["grad_backbone_from_flow"] == 0.0 and ki["grad_expert_from_ce"] == 0.0
    assert pi0["grad_backbone_from_flow"] > 0.0 and pi0["grad_expert_from_ce"] is None
    assert ki["final"]["ce"] > 0 and "held_out_fast_mae" in ki
    text = report.read_text()
    assert "## Acting: FAST" in text and "knowledge-insulated VLA" in text
    assert (report.parent / "plots" / "vla.png").stat().st_size > 0


def test_unknown_section_is_refused_before_any_work(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"sections: expected names from .*received 'planning'"):
        main(DemoConfig(root=tmp_path, sections=("fast", "planning")))
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.smoke
def test_closed_loop_section_runs_the_shipped_policies_beside_expert_and_random(tmp_path) -> None:
    from reasonact.demo import ClosedLoopDemo

    config = DemoConfig(
        root=tmp_path,
        sections=("closed_loop",),
        closed_loop=ClosedLoopDemo(tasks=("drawer-open-v3",), episodes=1, num_envs=1),
    )
    report = main(config)
    numbers = json.loads((report.parent / "report.json").read_text())["closed_loop"]
    assert set(numbers) == {"VLA", "CNN BC", "expert_mean_success", "random_mean_success"}
    for name in ("VLA", "CNN BC"):
        low, high = numbers[name]["ci"]
        assert low <= numbers[name]["mean_success"] <= high and numbers[name]["tasks"]["drawer-open-v3"]["ci"] == [
            low,
            high,
        ]
    assert numbers["expert_mean_success"] == 1.0 and numbers["random_mean_success"] == 0.0
    text = report.read_text()
    assert "| drawer-open-v3 |" in text and "CNN BC [95% CI]" in text
    for gif in (
        "closed_loop/vla/vla/videos/drawer-open-v3_ep0.gif",
        "closed_loop/cnn_bc/vla/videos/drawer-open-v3_ep0.gif",
    ):
        assert f"]({gif})" in text and (report.parent / gif).stat().st_size > 0
