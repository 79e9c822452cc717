"""LeRobot's own `LeRobotDataset` opens our expert datasets frame for frame (in the LeRobot peer venv).

lerobot cannot be installed beside reasonact (Python>=3.12, torch<2.12 declared), so it runs in a side
venv built by `scripts/peer_lerobot_data.sh`; without that venv the test is skipped with that hint.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reasonact.data.lerobot import LeRobotReader

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(os.environ.get("REASONACT_LEROBOT_PEER", ROOT / ".peer-venv/lerobot-data")) / "bin/python"


@pytest.mark.slow
@pytest.mark.skipif(not PEER.exists(), reason=f"no LeRobot peer venv at {PEER}: run scripts/peer_lerobot_data.sh")
def test_lerobot_dataset_reads_what_we_wrote(tmp_path) -> None:
    from reasonact.data.collect import PRESETS, collect

    tiny = PRESETS["tiny"][1]
    config = dataclasses.replace(
        tiny,
        tasks=("drawer-close-v3", "reach-v3"),
        episodes_per_task=1,
        out=tmp_path / "ds",
        env=dataclasses.replace(tiny.env, image_size=16),
    )
    collect(config, progress=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    script = Path(__file__).with_name("lerobot_peer_load.py")
    done = subprocess.run([PEER, script, tmp_path / "ds", tmp_path / "peer.npz"], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    peer = np.load(tmp_path / "peer.npz")

    reader = LeRobotReader(tmp_path / "ds")
    assert int(peer["meta.num_episodes"]) == reader.num_episodes == 2
    ours = [reader.episode(i) for i in range(reader.num_episodes)]

    def cat(key: str) -> np.ndarray:
        return np.concatenate([np.atleast_1d(e[key]) for e in ours])

    for key in ("action", "observation.state", "episode_index", "frame_index", "index", "subtask_index"):
        np.testing.assert_array_equal(peer[key], cat(key), err_msg=key)
    images = np.round(peer["observation.images.corner"] * 255).astype(np.uint8)  # (n, 3, h, w) float in [0, 1]
    np.testing.assert_array_equal(images.transpose(0, 2, 3, 1), cat("observation.images.corner"))
    assert list(peer["task"]) == [str(e["task"]) for e in ours for _ in e["frame_index"]]
    assert list(peer["subtask"]) == list(cat("subtask"))
