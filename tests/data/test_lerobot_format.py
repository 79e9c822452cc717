"""LeRobot v3.0 datasets: write→read identity, the v3.0 schema (PNG and mp4 cameras), corruption, resuming.

These check the layout LeRobot's `utils.py` / `io_utils.py` / `dataset_metadata.py` define (codebase
v3.0); `test_lerobot_loader.py` opens our datasets with LeRobot's own loader in its side venv.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from reasonact.data import stats as stats_lib
from reasonact.data.lerobot import LeRobotReader, LeRobotWriter

FEATURES = {
    "observation.images.cam": {"dtype": "image", "shape": [8, 8, 3], "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["dx", "dy"]},
    "next.success": {"dtype": "bool", "shape": [1], "names": None},
    "subtask": {"dtype": "string", "shape": [1], "names": None},
}


def _episode(rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    return {
        "observation.images.cam": rng.integers(0, 256, (length, 8, 8, 3), dtype=np.uint8),
        "observation.state": rng.normal(size=(length, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32),
        "next.success": np.arange(length) == length - 1,
        "subtask": np.array(["reach" if t < length // 2 else "push" for t in range(length)], dtype=object),
    }


def _as_video(features: dict) -> dict:
    return {k: {**ft, "dtype": "video"} if ft["dtype"] == "image" else ft for k, ft in features.items()}


def _write(root, episodes, per_file=2, features=FEATURES):
    writer = LeRobotWriter(root, fps=10, features=features, robot_type="test", episodes_per_file=per_file)
    for task, frames in episodes:
        writer.add_episode(task, frames)
    writer.flush()
    return writer


def test_write_then_read_is_identity(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        ("open the drawer", _episode(rng, 5)),
        ("push the puck", _episode(rng, 7)),
        ("open the drawer", _episode(rng, 3)),
    ]
    _write(tmp_path / "ds", episodes)
    reader = LeRobotReader(tmp_path / "ds")
    assert reader.num_episodes == 3 and len(reader) == 15 and reader.tasks == ["open the drawer", "push the puck"]
    for index, (task, frames) in enumerate(episodes):
        got = reader.episode(index)
        assert got["task"] == task
        for key, value in frames.items():
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        np.testing.assert_array_equal(got["frame_index"], np.arange(len(frames["action"])))
        np.testing.assert_allclose(got["timestamp"], np.arange(len(frames["action"])) / 10, rtol=1e-6)


def test_layout_follows_lerobot_v3(tmp_path):
    rng = np.random.default_rng(1)
    _write(tmp_path / "ds", [("a", _episode(rng, 4)), ("b", _episode(rng, 6)), ("a", _episode(rng, 5))])
    root = tmp_path / "ds"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["total_frames"] == 15
    assert info["total_tasks"] == 2 and info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert info["features"][key]["dtype"] in ("float32", "int64") and info["features"][key]["shape"] == [1]
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert set(data.column_names) == set(info["features"])
    assert str(data.schema.field("observation.images.cam").type) == "struct<bytes: binary, path: string>"
    assert b"huggingface" in data.schema.metadata  # HF `Image()` feature metadata, as LeRobot writes it
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for column in (
        "episode_index",
        "tasks",
        "length",
        "dataset_from_index",
        "dataset_to_index",
        "data/chunk_index",
        "data/file_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
        "stats/action/mean",
    ):
        assert column in episodes[0], column
    assert episodes[1]["dataset_from_index"] == episodes[0]["dataset_to_index"] == 4
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pandas()
    assert tasks.index.name == "task" and list(tasks["task_index"]) == [0, 1]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.cam"]["mean"]).shape == (3, 1, 1)  # per channel, in [0, 1]
    assert set(stats["action"]) >= {"min", "max", "mean", "std", "count", "q01", "q99"}
    assert stats["frame_index"]["max"] == [5] and stats["index"]["count"] == [15]  # bookkeeping columns too


def test_aggregated_stats_equal_stats_of_the_concatenation():
    rng = np.random.default_rng(2)
    parts = [rng.normal(size=(n, 3)) for n in (5, 11, 8)]
    agg = stats_lib.aggregate([{"x": stats_lib.feature_stats(p, is_image=False)} for p in parts])["x"]
    whole = np.concatenate(parts)
    np.testing.assert_allclose(agg["mean"], whole.mean(0))
    np.testing.assert_allclose(agg["std"], whole.std(0))
    np.testing.assert_allclose(agg["min"], whole.min(0))
    assert agg["count"][0] == 24


def test_corrupted_and_partial_files_are_named(tmp_path):
    rng = np.random.default_rng(3)
    _write(tmp_path / "ds", [("a", _episode(rng, 4)), ("b", _episode(rng, 4))], per_file=1)
    data = tmp_path / "ds/data/chunk-000/file-001.parquet"
    data.write_bytes(data.read_bytes()[:50])
    reader = LeRobotReader(tmp_path / "ds")
    reader.episode(0)
    with pytest.raises(ValueError, match=r"file-001\.parquet"):
        reader.episode(1)
    (tmp_path / "ds/meta/info.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"info\.json"):
        LeRobotReader(tmp_path / "ds")


@pytest.mark.parametrize("camera", ["image", "video"])
def test_interrupted_flush_is_discarded_and_writing_resumes(tmp_path, camera):
    features = FEATURES if camera == "image" else _as_video(FEATURES)
    rng = np.random.default_rng(4)
    first = [("a", _episode(rng, 4)), ("b", _episode(rng, 5))]
    _write(tmp_path / "ds", first, per_file=1, features=features)
    info = tmp_path / "ds/meta/info.json"
    committed = info.read_text()
    _write(tmp_path / "ds", [("a", _episode(rng, 6))], per_file=1, features=features)
    info.write_text(committed)  # crash before the commit point: a third episode's files exist, info says 2
    with pytest.raises(ValueError, match="interrupted"):
        LeRobotReader(tmp_path / "ds")
    extra = ("c", _episode(rng, 3))
    video = tmp_path / "ds/videos/observation.images.cam/chunk-000/file-002.mp4"
    assert video.exists() == (camera == "video")
    writer = _write(tmp_path / "ds", [extra], per_file=1, features=features)  # reopening repairs, then appends
    reader = LeRobotReader(tmp_path / "ds")
    assert writer.num_episodes == reader.num_episodes == 3 and reader.tasks == ["a", "b", "c"]
    np.testing.assert_array_equal(reader.episode(1)["action"], first[1][1]["action"])
    np.testing.assert_array_equal(reader.episode(2)["action"], extra[1]["action"])
    if camera == "video":  # the interrupted flush's 6-frame video was replaced by the new episode's 3 frames
        assert reader.episode(2)["observation.images.cam"].shape == (3, 8, 8, 3)


def _smooth(rng: np.random.Generator, length: int, size: int = 16) -> np.ndarray:
    """uint8 (T, size, size, 3): a colour ramp that drifts per frame (codec-friendly, every frame distinct)."""
    y, x = np.mgrid[0:size, 0:size]
    base = rng.integers(20, 60, 3)
    frames = [  # consecutive frames differ by ~24 levels a pixel, far above the codec's error (< 3)
        np.stack([x * 4 + base[0] + 16 * t, y * 4 + base[1], np.full_like(x, base[2] + 8 * t)], -1)
        for t in range(length)
    ]
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_video_cameras_follow_lerobot_v3_and_read_back(tmp_path):
    rng = np.random.default_rng(5)
    features = {
        **_as_video(FEATURES),
        "observation.images.cam": {**FEATURES["observation.images.cam"], "dtype": "video", "shape": [16, 16, 3]},
    }
    episodes = []
    for task, length in (("a", 5), ("b", 7), ("a", 3)):
        frames = _episode(rng, length)
        frames["observation.images.cam"] = _smooth(rng, length)
        episodes.append((task, frames))
    _write(tmp_path / "ds", episodes, per_file=2, features=features)
    root = tmp_path / "ds"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    camera = info["features"]["observation.images.cam"]
    assert camera["dtype"] == "video" and camera["shape"] == [16, 16, 3]
    assert camera["info"]["video.codec"] == "h264" and camera["info"]["video.fps"] == 10
    assert info["features"]["observation.state"]["names"] == ["x", "y", "z"]
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert "observation.images.cam" not in data.column_names and data.num_rows == 12
    for file in ("file-000", "file-001"):
        assert (root / f"videos/observation.images.cam/chunk-000/{file}.mp4").is_file()
    rows = LeRobotReader(root).episodes
    spans = [
        (
            r["videos/observation.images.cam/file_index"],
            r["videos/observation.images.cam/from_timestamp"],
            r["videos/observation.images.cam/to_timestamp"],
        )
        for r in rows
    ]
    assert spans == [(0, 0.0, 0.5), (0, 0.5, 1.2), (1, 0.0, 0.3)]  # back to back within a file
    stats = json.loads((root / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.cam"]["mean"]).shape == (3, 1, 1)
    reader = LeRobotReader(root)
    for index, (_, frames) in enumerate(episodes):
        got, source = reader.episode(index)["observation.images.cam"], frames["observation.images.cam"]
        assert got.shape == source.shape
        assert np.abs(got.astype(int) - source).mean() < 3.0  # H.264 crf 18
        distance = np.abs(got[:, None].astype(int) - source[None]).mean((2, 3, 4))  # (T, T)
        np.testing.assert_array_equal(distance.argmin(1), np.arange(len(source)))  # its own frames, in order
        np.testing.assert_array_equal(reader.episode(index)["action"], frames["action"])
    (root / "videos/observation.images.cam/chunk-000/file-001.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"file-001\.mp4"):
        LeRobotReader(root).episode(2)


def test_features_are_checked_before_anything_is_written(tmp_path):
    unnamed = {**FEATURES, "action": {"dtype": "float32", "shape": [2], "names": None}}
    with pytest.raises(ValueError, match=r"features\['action'\]\['names'\]: expected 2 entry names, received None"):
        LeRobotWriter(tmp_path / "a", fps=10, features=unnamed, robot_type="test")
    odd = {**_as_video(FEATURES), "observation.images.cam": {"dtype": "video", "shape": [9, 9, 3], "names": None}}
    with pytest.raises(ValueError, match=r"even height and width, received 9×9"):
        LeRobotWriter(tmp_path / "b", fps=10, features=odd, robot_type="test")
    LeRobotWriter(
        tmp_path / "c",
        fps=10,
        features={**FEATURES, "observation.images.cam": odd["observation.images.cam"] | {"dtype": "image"}},
        robot_type="test",
    )  # PNG takes any size
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.smoke
def test_collect_writes_expert_demos_and_resumes(tmp_path):
    from reasonact.data.collect import PRESETS, collect

    config = dataclasses.replace(
        PRESETS["tiny"][1],
        tasks=("drawer-close-v3",),
        episodes_per_task=1,
        out=tmp_path / "ds",
        env=dataclasses.replace(PRESETS["tiny"][1].env, image_size=16),
    )
    report = collect(config, progress=False)
    assert report["tasks"]["drawer-close-v3"]["expert_success"] == 1.0
    first = LeRobotReader(tmp_path / "ds").episode(0)
    report = collect(dataclasses.replace(config, episodes_per_task=2), progress=False)  # resume: one more
    assert report["tasks"]["drawer-close-v3"] == {"kept": 2, "attempts": 1, "expert_success": 1.0}
    reader = LeRobotReader(tmp_path / "ds")
    assert reader.num_episodes == 2 and reader.episodes[1]["seed"] == reader.episodes[0]["seed"] + 1
    np.testing.assert_array_equal(reader.episode(0)["action"], first["action"])
    episode = reader.episode(1)
    assert episode["observation.images.corner"].shape[1:] == (16, 16, 3)
    assert episode["next.success"][-1] and episode["subtask"][0] == "reach the drawer"
    assert episode["subtask"][-1] == "push the drawer closed" and np.all(np.diff(episode["subtask_index"]) >= 0)


@pytest.mark.slow
def test_parallel_collection_writes_the_same_dataset(tmp_path):
    from reasonact.data.collect import PRESETS, collect
    from reasonact.envs import EnvConfig, ExpertNoise

    base = dataclasses.replace(
        PRESETS["tiny"][1],
        tasks=("reach-v3",),
        episodes_per_task=3,
        env=EnvConfig(image_size=16, max_steps=60),
        noise=ExpertNoise(action_std=0.1),
    )
    for workers in (1, 2):
        collect(dataclasses.replace(base, workers=workers, out=tmp_path / str(workers)), progress=False)
    one, two = LeRobotReader(tmp_path / "1"), LeRobotReader(tmp_path / "2")
    assert one.num_episodes == two.num_episodes == 3
    for index in range(3):
        a, b = one.episode(index), two.episode(index)
        np.testing.assert_array_equal(a["action"], b["action"])  # noise too: each episode is a function of its seed
        np.testing.assert_array_equal(a["observation.images.corner"], b["observation.images.corner"])
