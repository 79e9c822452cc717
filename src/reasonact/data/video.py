"""Frames ↔ mp4 with PyAV: camera streams of LeRobot v3 datasets and rollout videos.

PyAV is what LeRobot's loader decodes with when torchcodec is absent (`decode_video_frames_pyav`),
so a file written here is read back by it and by `decode` below from the same bitstream with the
same FFmpeg. Every frame is a presentation at `index / fps` seconds (time base 1/fps), the encoder
is flushed so the final frame is in the file, and the file appears atomically.

Codec: H.264 (libx264) with LeRobot's other defaults (yuv420p, a keyframe every 2 frames for fast
random access). LeRobot's default codec, SVT-AV1, killed the process with SIGFPE on 16-px frames
here; H.264 at crf 18 is as close to the source on 96-px MetaWorld frames (mean |error| 3.5 vs 3.1
of 255) and ~12× smaller than PNG frames (docs/simulators.md).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_bytes


@dataclass(frozen=True)
class VideoCodec:
    """Encoder settings; recorded in a LeRobot video feature's `info` block."""

    codec: str = "libx264"  # FFmpeg encoder (H.264: decoded by PyAV, torchcodec and browsers)
    pix_fmt: str = "yuv420p"  # LeRobot's default pixel format; 4:2:0 needs even width and height
    crf: int = 18  # constant rate factor, 0 (best) … 51; 18 ≈ visually lossless
    gop: int = 2  # keyframe interval (LeRobot's `g`): a random frame costs at most 2 decodes


DEFAULT_CODEC = VideoCodec()


def check_frames(frames: np.ndarray, codec: VideoCodec, name: str = "frames") -> None:
    """uint8 (T, h, w, 3) with T ≥ 1; even h and w for 4:2:0 chroma."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"{name}: expected uint8 (T ≥ 1, h, w, 3), received {frames.dtype} {tuple(frames.shape)}")
    if codec.pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise ValueError(
            f"{name}: {codec.pix_fmt} video needs even height and width, received {frames.shape[1]}×{frames.shape[2]}"
            " (pick an even image size)"
        )


def encode_bytes(frames: np.ndarray, fps: int, codec: VideoCodec = DEFAULT_CODEC) -> bytes:
    """uint8 (T, h, w, 3) → mp4 bytes, frame t shown at t / fps, all T frames (the final one included)."""
    import av

    check_frames(frames, codec)
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps: expected an integer ≥ 1, received {fps!r}")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec.codec, rate=fps, options={"crf": str(codec.crf), "g": str(codec.gop)})
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], codec.pix_fmt
        for t, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = t  # in the stream's time base 1/fps
            container.mux(stream.encode(picture))
        container.mux(stream.encode())  # flush: the encoder holds back the last frames until now
    return buffer.getvalue()


def encode(frames: np.ndarray, path: str | Path, fps: int, codec: VideoCodec = DEFAULT_CODEC) -> Path:
    """Write frames (T, h, w, 3) uint8 as an mp4 at `path` (atomically); returns the path."""
    atomic_write_bytes(path, encode_bytes(frames, fps, codec))
    return Path(path)


def decode(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """mp4 → (frames uint8 (T, h, w, 3), presentation times float64 (T,) in seconds)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found (dataset incomplete?)")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            decoded = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream) if f.pts is not None]
            base = stream.time_base
    except (av.FFmpegError, IndexError) as err:
        raise ValueError(f"{path}: corrupted or empty video file ({err})") from err
    if not decoded:
        raise ValueError(f"{path}: no video frames decoded")
    times = np.asarray([float(pts * base) for pts, _ in decoded])  # (T,)
    return np.stack([image for _, image in decoded]), times


def feature_info(codec: VideoCodec, height: int, width: int, fps: int) -> dict:
    """The `info` block LeRobot keeps for a video feature in meta/info.json (`get_video_info`'s keys)."""
    import av

    return {
        "video.height": height,
        "video.width": width,
        "video.codec": av.codec.Codec(codec.codec, "w").canonical_name,
        "video.pix_fmt": codec.pix_fmt,
        "video.fps": fps,
        "video.channels": 3,
        "video.g": codec.gop,
        "video.crf": codec.crf,
        "has_audio": False,
        "is_depth_map": False,
    }
