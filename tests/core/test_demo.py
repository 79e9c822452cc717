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
