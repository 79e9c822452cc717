"""Collection safety: a bad --out is refused before any rollout, a damaged dataset is never extended,
and what is written has normal permissions."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from reasonact.data import collect as collect_module
from reasonact.data.collect import PRESETS, collect
from reasonact.envs import EnvConfig

TINY = dataclasses.replace(
    PRESETS["tiny"][1], tasks=("reach-v3",), episodes_per_task=1, env=EnvConfig(image_size=16, max_steps=60)
)


def _no_rollouts(monkeypatch) -> None:
    monkeypatch.setattr(collect_module, "demonstration", lambda *args: pytest.fail("rolled out"))


def test_a_bad_out_is_refused_before_any_rollout(tmp_path, monkeypatch):
    _no_rollouts(monkeypatch)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out: cannot write to"):
        collect(dataclasses.replace(TINY, out=tmp_path / "file" / "ds"), progress=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match="out: .* non-empty directory without a dataset"):
        collect(dataclasses.replace(TINY, out=tmp_path / "notes"), progress=False)


def test_resuming_over_a_truncated_data_file_is_refused(tmp_path):
    """It used to exit 0 and append to the dataset; the truncated file failed only when loaded."""
    config = dataclasses.replace(TINY, out=tmp_path / "ds")
    collect(config, progress=False)
    data = tmp_path / "ds" / "data" / "chunk-000" / "file-000.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    info = (tmp_path / "ds" / "meta" / "info.json").read_text()
    with pytest.raises(ValueError, match=r"file-000.parquet: cannot be read .* refusing to resume"):
        collect(dataclasses.replace(config, episodes_per_task=2), progress=False)
    assert (tmp_path / "ds" / "meta" / "info.json").read_text() == info  # nothing appended
    assert json.loads(info)["total_episodes"] == 1


def test_datasets_are_written_with_normal_permissions(tmp_path):
    """Files used to be 0600 (tempfile.mkstemp's mode survived the atomic rename)."""
    collect(dataclasses.replace(TINY, out=tmp_path / "ds"), progress=False)
    umask = os.umask(0)
    os.umask(umask)
    files = [p for p in (tmp_path / "ds").rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o666 & ~umask}
