"""Datasets in the LeRobotDataset v3.0 layout: write (resumable) and read, without importing `lerobot`.

Layout (huggingface/lerobot `src/lerobot/datasets/utils.py`, `io_utils.py`, codebase v3.0):

    meta/info.json                                   schema, fps, counts, path templates
    meta/stats.json                                  normalisation statistics per feature
    meta/tasks.parquet                               task string (index "task") → task_index
    meta/episodes/chunk-XXX/file-XXX.parquet         one row per episode: length, tasks, frame
                                                     range, data file, per-episode stats/*
    data/chunk-XXX/file-XXX.parquet                  one row per frame, many episodes per file
    videos/<camera>/chunk-XXX/file-XXX.mp4           the camera frames of the same episodes, back to back

Camera features are stored in one of LeRobot's two ways. `dtype: "video"` (LeRobot v3's default):
an mp4 per camera and data file (`reasonact.data.video`), located by `video_path` in info.json and
per episode by `videos/<camera>/{chunk_index, file_index, from_timestamp, to_timestamp}`; a frame is
the one shown at `from_timestamp + timestamp`. `dtype: "image"`: PNG bytes embedded in the data
parquet as Hugging Face `Image()` structs ({bytes, path}), lossless. LeRobot's own `LeRobotDataset`
(in a side venv: `tests/data/test_lerobot_loader.py`) reads both.

Crash safety: every file is written atomically, and one flush writes its data file and videos, then
its episodes file, then info.json. info.json is the commit point: on reopening, episodes beyond
`total_episodes` belong to an interrupted flush and their files are removed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_bytes, atomic_write_json, atomic_write_parquet, read_json
from reasonact.data import stats as stats_lib
from reasonact.data import video as video_lib

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory (LeRobot's default)
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
INDEX_FEATURES = {  # every frame's bookkeeping columns, as LeRobot's DEFAULT_FEATURES
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
CAMERA_DTYPES = ("image", "video")  # camera features: PNG in the data parquet, or mp4 files
VIDEO_TOLERANCE_S = 1e-4  # largest gap between a frame's timestamp and the video's (LeRobot's `tolerance_s`)


def hf_features(features: dict[str, dict]):
    """LeRobot feature specs → `datasets.Features` of the data parquet (video features live in mp4 files)."""
    import datasets

    out = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        if ft["dtype"] == "image":
            out[key] = datasets.Image()
        elif ft["dtype"] == "string" or list(ft["shape"]) == [1]:
            out[key] = datasets.Value(ft["dtype"])
        else:
            out[key] = datasets.Sequence(datasets.Value(ft["dtype"]), length=int(ft["shape"][0]))
    return datasets.Features(out)


def _read_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (dataset incomplete?)")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path}: corrupted parquet file ({err})") from err


def _png(image: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".png")


def check_features(features: dict[str, dict]) -> None:
    """Camera features are (h, w, 3); vector features name each of their entries (LeRobot's `names`)."""
    for key, ft in features.items():
        shape, names = list(ft["shape"]), ft.get("names")
        if ft["dtype"] in CAMERA_DTYPES:
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"features[{key!r}]: expected a camera shape [h, w, 3], received {shape}")
        elif ft["dtype"] != "string" and shape != [1] and (not isinstance(names, list) or len(names) != shape[0]):
            raise ValueError(f"features[{key!r}]['names']: expected {shape[0]} entry names, received {names!r}")


def _strip_info(features: dict[str, dict]) -> dict[str, dict]:
    return {k: {n: v for n, v in ft.items() if n != "info"} for k, ft in features.items()}


class LeRobotWriter:
    """Appends episodes to a v3.0 dataset at `root`, creating it or resuming it.

    Camera features of `dtype: "video"` are encoded with `codec`; `"image"` ones go into the parquet as PNG.
    """

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: dict[str, dict],
        robot_type: str,
        episodes_per_file: int = 10,
        codec: video_lib.VideoCodec = video_lib.DEFAULT_CODEC,
    ) -> None:
        check_features(features)
        self.root, self.episodes_per_file, self.codec = Path(root), episodes_per_file, codec
        self.features = {**INDEX_FEATURES, **_strip_info(features)}
        self.video_keys = [k for k, ft in self.features.items() if ft["dtype"] == "video"]
        for key in self.video_keys:
            h, w, _ = self.features[key]["shape"]
            try:
                video_lib.check_frames(np.zeros((1, h, w, 3), np.uint8), codec, f"features[{key!r}]")
            except ValueError as err:
                raise ValueError(f"{err}, or store it as PNG (dtype 'image'; `data collect --no-video`)") from err
            self.features[key]["info"] = video_lib.feature_info(codec, h, w, fps)
        self._buffer: list[dict] = []
        info_path = self.root / "meta" / "info.json"
        if info_path.exists():
            self.info = read_json(info_path)
            if self.info["features"] != self.features:
                old, new = self.info["features"], self.features
                differ = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
                raise ValueError(
                    f"{info_path}: existing dataset's features differ from this writer's in {differ} "
                    f"(stored: {[old.get(k) for k in differ]}); write to a new directory"
                )
            reader = LeRobotReader(self.root, repair=True)
            self.episodes, self.tasks = reader.episodes, reader.tasks
        else:
            self.info = {
                "codebase_version": CODEBASE_VERSION,
                "robot_type": robot_type,
                "total_episodes": 0,
                "total_frames": 0,
                "total_tasks": 0,
                "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": 100,
                "video_files_size_in_mb": 200,
                "fps": fps,
                "splits": {},
                "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if self.video_keys else None,
                "features": self.features,
            }
            self.episodes, self.tasks = [], []

    @property
    def num_episodes(self) -> int:
        return len(self.episodes) + len(self._buffer)

    def add_episode(self, task: str, frames: dict[str, np.ndarray], extra: dict | None = None) -> int:
        """Buffer one episode (feature → (T, ...) array); flushes every `episodes_per_file`.

        `extra` adds columns to the episode's metadata row (e.g. seed, simulator task name).
        """
        lengths = {k: len(v) for k, v in frames.items()}
        missing = set(self.features) - set(INDEX_FEATURES) - set(frames)
        if missing or len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
            raise ValueError(f"frames: expected equal, non-zero lengths for {sorted(self.features)}; got {lengths}")
        self._buffer.append({"task": task, "frames": frames, "extra": extra or {}})
        if len(self._buffer) >= self.episodes_per_file:
            self.flush()
        return self.num_episodes - 1

    def flush(self) -> None:
        """Write buffered episodes as one data file + one episodes file, then commit info.json."""
        if not self._buffer:
            return
        import pandas as pd
        import pyarrow as pa

        file_index = self._next_file_index()
        chunk, file = divmod(file_index, CHUNKS_SIZE)
        columns: dict[str, list] = {k: [] for k, ft in self.features.items() if ft["dtype"] != "video"}
        rows = []
        start = self.info["total_frames"]
        for ep in self._buffer:
            if ep["task"] not in self.tasks:
                self.tasks.append(ep["task"])
            ep_index, length = len(self.episodes) + len(rows), len(next(iter(ep["frames"].values())))
            self._append_columns(columns, ep, ep_index, start)
            index_columns = {  # LeRobot keeps statistics of the bookkeeping columns too
                "timestamp": np.arange(length) / self.info["fps"],
                "frame_index": np.arange(length),
                "episode_index": np.full(length, ep_index),
                "index": np.arange(start, start + length),
                "task_index": np.full(length, self.tasks.index(ep["task"])),
            }
            ep_stats = {
                k: stats_lib.feature_stats(np.asarray(v), self.features[k]["dtype"] in CAMERA_DTYPES)
                for k, v in {**ep["frames"], **index_columns}.items()
                if self.features[k]["dtype"] not in ("string", "bool")
            }
            row = {
                "episode_index": ep_index,
                "tasks": [ep["task"]],
                "length": length,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": start,
                "dataset_to_index": start + length,
                "meta/episodes/chunk_index": chunk,
                "meta/episodes/file_index": file,
            }
            for key in self.video_keys:  # this episode's span in the flush's video (frames back to back)
                offset = (start - self.info["total_frames"]) / self.info["fps"]
                row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"] = chunk, file
                row[f"videos/{key}/from_timestamp"] = offset
                row[f"videos/{key}/to_timestamp"] = offset + length / self.info["fps"]
            row.update(ep["extra"])
            row.update({f"stats/{k}/{s}": v.tolist() for k, st in ep_stats.items() for s, v in st.items()})
            rows.append(row)
            start += length
        table = pa.Table.from_pydict(columns, schema=hf_features(self.features).arrow_schema)
        atomic_write_parquet(self.root / DATA_PATH.format(chunk_index=chunk, file_index=file), table)
        for key in self.video_keys:
            frames = np.concatenate([ep["frames"][key] for ep in self._buffer])  # (frames of the flush, h, w, 3)
            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            video_lib.encode(frames, path, self.info["fps"], self.codec)
        atomic_write_parquet(
            self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=file), pa.Table.from_pylist(rows)
        )
        tasks = pd.DataFrame({"task_index": range(len(self.tasks))}, index=pd.Index(self.tasks, name="task"))
        buffer = io.BytesIO()
        tasks.to_parquet(buffer)
        atomic_write_bytes(self.root / "meta" / "tasks.parquet", buffer.getvalue())
        self.episodes.extend(rows)
        self._buffer = []
        per_episode = [self._episode_stats(row) for row in self.episodes]
        atomic_write_json(self.root / "meta" / "stats.json", stats_lib.to_json(stats_lib.aggregate(per_episode)))
        self.info.update(
            total_episodes=len(self.episodes),
            total_frames=start,
            total_tasks=len(self.tasks),
            splits={"train": f"0:{len(self.episodes)}"},
        )
        atomic_write_json(self.root / "meta" / "info.json", self.info)  # the commit point

    def _append_columns(self, columns: dict[str, list], ep: dict, ep_index: int, start: int) -> None:
        length = len(next(iter(ep["frames"].values())))
        columns["timestamp"] += (np.arange(length) / self.info["fps"]).astype(np.float32).tolist()
        columns["frame_index"] += list(range(length))
        columns["episode_index"] += [ep_index] * length
        columns["index"] += list(range(start, start + length))
        columns["task_index"] += [self.tasks.index(ep["task"])] * length
        for key, values in ep["frames"].items():
            if self.features[key]["dtype"] == "video":
                continue
            if self.features[key]["dtype"] == "image":
                columns[key] += [{"bytes": _png(img), "path": None} for img in values]
            else:
                columns[key] += (
                    np.asarray(values).reshape(length, -1).tolist()
                    if self._is_vector(key)
                    else list(np.asarray(values).reshape(length).tolist())
                )

    def _is_vector(self, key: str) -> bool:
        ft = self.features[key]
        return ft["dtype"] not in ("string", *CAMERA_DTYPES) and list(ft["shape"]) != [1]

    def _episode_stats(self, row: dict) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for key, value in row.items():
            if key.startswith("stats/"):
                _, feature, stat = key.split("/")  # "stats/<feature>/<stat>"; feature names hold no "/"
                out.setdefault(feature, {})[stat] = np.asarray(value)
        return out

    def _next_file_index(self) -> int:
        if not self.episodes:
            return 0
        last = self.episodes[-1]
        return last["data/chunk_index"] * CHUNKS_SIZE + last["data/file_index"] + 1


class LeRobotReader:
    """Reads a v3.0 dataset: metadata eagerly, frames per episode on demand (images decoded)."""

    def __init__(self, root: str | Path, repair: bool = False) -> None:
        self.root = Path(root)
        self.info = read_json(self.root / "meta" / "info.json")
        for key in ("codebase_version", "features", "fps", "total_episodes", "data_path"):
            if key not in self.info:
                raise ValueError(f"{self.root / 'meta' / 'info.json'}: missing key {key!r}")
        self.features = self.info["features"]
        self.video_keys = [k for k, ft in self.features.items() if ft["dtype"] == "video"]
        if self.video_keys and not self.info.get("video_path"):
            info_path = self.root / "meta" / "info.json"
            raise ValueError(f"{info_path}: video features {self.video_keys} but no 'video_path'")
        total = self.info["total_episodes"]
        rows = []
        for path in sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            file_rows = _read_parquet(path).to_pylist()
            if file_rows and file_rows[0]["episode_index"] >= total:  # from an interrupted flush
                if not repair:
                    raise ValueError(f"{path}: episodes beyond info.json's total_episodes={total} (interrupted write)")
                path.unlink()
                where = {"chunk_index": file_rows[0]["data/chunk_index"], "file_index": file_rows[0]["data/file_index"]}
                (self.root / DATA_PATH.format(**where)).unlink(missing_ok=True)
                for key in self.video_keys:
                    (self.root / VIDEO_PATH.format(video_key=key, **where)).unlink(missing_ok=True)
                continue
            rows += file_rows
        if len(rows) != total:
            raise ValueError(f"{self.root / 'meta' / 'episodes'}: {len(rows)} episodes found, info.json says {total}")
        self.episodes = sorted(rows, key=lambda r: r["episode_index"])
        self.tasks = self._tasks() if total else []
        stats_path = self.root / "meta" / "stats.json"
        self.stats = stats_lib.from_json(read_json(stats_path)) if total else {}
        self._cache: tuple[str, object] | None = None
        self._videos: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}  # camera → (path, frames, times)

    def _tasks(self) -> list[str]:
        import pandas as pd

        path = self.root / "meta" / "tasks.parquet"
        frame = _read_parquet(path).to_pandas()
        if "task_index" not in frame or frame.index.name != "task":
            raise ValueError(f"{path}: expected a 'task_index' column indexed by 'task', received {list(frame)}")
        return list(pd.Series(frame.index, index=frame["task_index"].to_numpy()).sort_index())

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def __len__(self) -> int:
        return int(self.info["total_frames"])

    def episode(self, index: int, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """All frames of one episode: feature → (T, ...) array (images uint8 (T, h, w, 3)); plus "task".
        `keys` reads only those features (+ the frame and task indices), e.g. no images for state-only users."""
        if not 0 <= index < self.num_episodes:
            raise ValueError(f"index: expected an episode index in [0, {self.num_episodes}), received {index}")
        row = self.episodes[index]
        path = self.root / self.info["data_path"].format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
        )
        table = self._table(path)
        mask = np.asarray(table.column("episode_index").to_numpy()) == index
        sub = table.filter(mask)
        out: dict[str, np.ndarray] = {}
        wanted = None if keys is None else {*keys, "frame_index", "task_index"}
        for key, ft in self.features.items():
            if wanted is not None and key not in wanted:
                continue
            if ft["dtype"] == "video":
                out[key] = self._video_frames(key, row, np.asarray(sub.column("timestamp").to_numpy()))
                continue
            column = sub.column(key).to_pylist()
            if ft["dtype"] == "image":
                out[key] = np.stack([_decode_png(item["bytes"], path) for item in column])
            else:
                out[key] = np.asarray(column, dtype=object if ft["dtype"] == "string" else ft["dtype"])
        if len(out["frame_index"]) != row["length"]:
            raise ValueError(
                f"{path}: episode {index} has {len(out['frame_index'])} frames, metadata says {row['length']}"
            )
        out["task"] = np.asarray(self.tasks[int(out["task_index"][0])], dtype=object)
        return out

    def _video_frames(self, key: str, row: dict, timestamps: np.ndarray) -> np.ndarray:
        """uint8 (T, h, w, 3): the frames shown at `from_timestamp + timestamp`, as LeRobot's loader picks them."""
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
        )
        if key not in self._videos or self._videos[key][0] != str(path):
            self._videos[key] = (str(path), *video_lib.decode(path))
        _, frames, times = self._videos[key]
        wanted = row[f"videos/{key}/from_timestamp"] + timestamps.astype(np.float64)  # (T,)
        nearest = np.abs(wanted[:, None] - times[None]).argmin(1)  # (T,)
        late = np.abs(times[nearest] - wanted).max()
        if late > VIDEO_TOLERANCE_S:
            raise ValueError(
                f"{path}: episode {row['episode_index']} needs frames at {wanted.min():.4f}…{wanted.max():.4f} s, "
                f"the video's nearest is {late:.4f} s away (tolerance {VIDEO_TOLERANCE_S} s)"
            )
        return frames[nearest]

    def _table(self, path: Path):
        if self._cache is None or self._cache[0] != str(path):
            self._cache = (str(path), _read_parquet(path))
        return self._cache[1]


def _decode_png(data: bytes, path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        return iio.imread(data, extension=".png")
    except Exception as err:  # imageio raises backend-specific errors
        raise ValueError(f"{path}: corrupted PNG frame ({err})") from err
