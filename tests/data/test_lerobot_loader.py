"""LeRobot's own `LeRobotDataset` opens our expert datasets (in the LeRobot peer venv), mp4 and PNG cameras.

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
CAMERA = "observation.images.corner"


@pytest.mark.slow
@pytest.mark.skipif(not PEER.exists(), reason=f"no LeRobot peer venv at {PEER}: run scripts/peer_lerobot_data.sh")
def test_lerobot_dataset_reads_what_we_wrote(tmp_path) -> None:
    from reasonact.data.collect import PRESETS, collect

    tiny = PRESETS["tiny"][1]
    config = dataclasses.replace(
        tiny,
        tasks=("drawer-close-v3", "reach-v3"),
        episodes_per_task=1,
        env=dataclasses.replace(tiny.env, image_size=32),
    )
    for video in (True, False):  # the same seeds: the same episodes, stored as mp4 or as PNG
        collect(dataclasses.replace(config, video=video, out=tmp_path / f"video={video}"), progress=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    script = Path(__file__).with_name("lerobot_peer_load.py")
    args = [a for video in (True, False) for a in (tmp_path / f"video={video}", tmp_path / f"peer{video}.npz")]
    done = subprocess.run([PEER, script, *args], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    images = {}
    for video in (True, False):
        peer = np.load(tmp_path / f"peer{video}.npz")
        reader = LeRobotReader(tmp_path / f"video={video}")
        assert int(peer["meta.num_episodes"]) == reader.num_episodes == 2
        assert list(peer["meta.video_keys"]) == ([CAMERA] if video else [])
        assert reader.info["features"]["action"]["names"] == ["dx", "dy", "dz", "gripper"]
        ours = [reader.episode(i) for i in range(reader.num_episodes)]

        def cat(key: str, ours=ours) -> np.ndarray:
            return np.concatenate([np.atleast_1d(e[key]) for e in ours])

        for key in ("action", "observation.state", "episode_index", "frame_index", "index", "subtask_index"):
            np.testing.assert_array_equal(peer[key], cat(key), err_msg=key)
        theirs = np.round(peer[CAMERA] * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # (n, 3, h, w) in [0, 1]
        np.testing.assert_array_equal(theirs, cat(CAMERA), err_msg=f"video={video}")  # same frames as our reader
        assert list(peer["task"]) == [str(e["task"]) for e in ours for _ in e["frame_index"]]
        assert list(peer["subtask"]) == list(cat("subtask"))
        images[video] = theirs.astype(int)
    error = np.abs(images[True] - images[False])  # LeRobot's mp4 frames vs the lossless PNG ones
    assert error.mean() < 7.0, error.mean()  # H.264 crf 18, 4:2:0 at 32 px: mean 5.5 (docs/simulators.md)
