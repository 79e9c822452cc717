"""mp4 encode → decode (PyAV): every frame back, the final one included, at t / fps, within codec error."""

from __future__ import annotations

import numpy as np
import pytest

from reasonact.data.video import VideoCodec, decode, encode, feature_info


def _moving_gradient(length: int, size: int) -> np.ndarray:
    """uint8 (T, size, size, 3): a smooth ramp whose brightness steps 8 levels per frame, so every frame differs
    from its neighbours by more than the codec's error (a 3-level step was lost to x264 once in CI)."""
    y, x = np.mgrid[0:size, 0:size]
    frames = [np.stack([(x * 4 + 5 * t) % 256, (y * 4) % 256, np.full_like(x, 20 + 8 * t)], -1) for t in range(length)]
    return np.asarray(frames, dtype=np.uint8)


@pytest.mark.parametrize("fps", [10, 20, 80])
def test_every_frame_comes_back_in_order_at_its_time(tmp_path, fps):
    frames = _moving_gradient(23, 32)
    decoded, times = decode(encode(frames, tmp_path / "a.mp4", fps))
    assert decoded.shape == frames.shape  # the final frame too (the encoder is flushed)
    np.testing.assert_array_equal(times, np.arange(23) / fps)
    error = np.abs(decoded.astype(int) - frames)
    assert error.mean() < 3.0, error.mean()  # crf 18: ~2 levels of 255 on these frames
    # each decoded frame is nearest to its own source frame: order and identity, not just similarity
    distance = np.abs(decoded[:, None].astype(int) - frames[None]).mean((2, 3, 4))  # (T, T)
    np.testing.assert_array_equal(distance.argmin(1), np.arange(23))


def test_single_frame_and_info_block(tmp_path):
    frame = _moving_gradient(1, 16)
    decoded, times = decode(encode(frame, tmp_path / "one.mp4", 10))
    assert decoded.shape == (1, 16, 16, 3) and times.tolist() == [0.0]
    info = feature_info(VideoCodec(), 16, 16, 10)
    assert info["video.codec"] == "h264" and info["video.fps"] == 10 and info["has_audio"] is False


def test_bad_frames_and_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"even height and width, received 15×16"):
        encode(np.zeros((2, 15, 16, 3), np.uint8), tmp_path / "odd.mp4", 10)
    with pytest.raises(ValueError, match=r"frames: expected uint8 \(T ≥ 1, h, w, 3\), received float32"):
        encode(np.zeros((2, 16, 16, 3), np.float32), tmp_path / "f.mp4", 10)
    with pytest.raises(ValueError, match=r"received uint8 \(0, 16, 16, 3\)"):
        encode(np.zeros((0, 16, 16, 3), np.uint8), tmp_path / "empty.mp4", 10)
    with pytest.raises(ValueError, match="fps"):
        encode(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "fps.mp4", 0)
    assert not list(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        decode(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(encode(_moving_gradient(4, 16), tmp_path / "ok.mp4", 10).read_bytes()[:200])
    with pytest.raises(ValueError, match=r"broken\.mp4"):
        decode(broken)
