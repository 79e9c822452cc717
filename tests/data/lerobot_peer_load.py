"""Runs inside the LeRobot peer venv (not under pytest): open datasets with LeRobot's own
`LeRobotDataset` and dump every frame to an .npz for the test to compare with our reader.
Video features are decoded by LeRobot's default backend there (PyAV; torchcodec is not installed).

Usage: python lerobot_peer_load.py DATASET_ROOT OUT.npz [DATASET_ROOT OUT.npz ...]
"""

import sys

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

for root, out in zip(sys.argv[1::2], sys.argv[2::2], strict=True):
    dataset = LeRobotDataset("local/reasonact", root=root)
    frames = [dataset[i] for i in range(len(dataset))]
    arrays = {}
    for key, value in frames[0].items():
        if isinstance(value, str):
            arrays[key] = np.array([f[key] for f in frames])
        else:
            arrays[key] = np.stack([f[key].numpy() for f in frames])
    arrays["meta.num_episodes"] = np.array(dataset.num_episodes)
    arrays["meta.video_keys"] = np.array(dataset.meta.video_keys, dtype=str)
    np.savez(out, **arrays)
