"""Wire format: numpy arrays survive msgpack exactly; anything that is not a well-formed message is refused
with a ProtocolError naming what was wrong."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from reasonact.serving.protocol import NDARRAY_EXT, ProtocolError, packb, unpackb


@pytest.mark.parametrize("dtype", ["uint8", "int64", "float16", "float32", "float64", "bool", ">f4"])
def test_arrays_round_trip_bit_exactly(dtype: str) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.uniform(-100, 100, (2, 3, 4)) > 0) if dtype == "bool" else rng.uniform(0, 200, (2, 3, 4)).astype(dtype)
    out = unpackb(packb({"a": arr, "nested": [arr[:, ::2]], "scalar": np.float32(1.5), "text": "hi"}))
    np.testing.assert_array_equal(out["a"], arr)
    assert out["a"].dtype == arr.dtype and out["a"].shape == (2, 3, 4)
    np.testing.assert_array_equal(out["nested"][0], arr[:, ::2])  # non-contiguous view sent as a copy
    assert out["scalar"] == 1.5 and out["text"] == "hi"


def test_zero_size_and_zero_dim_arrays() -> None:
    empty, scalar = unpackb(packb([np.zeros((0, 7), np.float32), np.array(3, np.int32)]))
    assert empty.shape == (0, 7) and scalar.shape == () and int(scalar) == 3


def test_object_arrays_are_never_sent() -> None:
    with pytest.raises(TypeError, match="dtype object cannot travel"):
        packb({"x": np.array([{"a": 1}], dtype=object)})


def _ext(header: list) -> bytes:
    return msgpack.packb({"x": msgpack.ExtType(NDARRAY_EXT, msgpack.packb(header))})


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (["<f4", [2, 3], b"\0" * 23], r"shape \(2, 3\) of float32 needs 24 bytes, received 23"),
        (["|O", [1], b"\0" * 8], "dtype '|O' refused"),
        (["<c8", [1], b"\0" * 8], "dtype '<c8' refused"),
        (["nonsense", [1], b"\0"], "unknown dtype 'nonsense'"),
        (["<f4", [-1], b""], "shape of at most 8 sizes >= 0, received \\[-1\\]"),
        (["<f4", [1] * 9, b"\0" * 4], "shape of at most 8"),
        (["<f4", [1]], r"expected \[dtype, shape, bytes\]"),
    ],
)
def test_malformed_arrays_are_refused(header: list, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as err:
        unpackb(_ext(header))
    assert err.value.kind == "bad_message" and err.value.field == "array"


def test_non_msgpack_and_text_frames_are_refused() -> None:
    for data in (b"\xc1", b"GET / HTTP/1.1\r\n", b"\x92\x01", b""):  # reserved byte, trailing data, truncated
        with pytest.raises(ProtocolError, match="not a msgpack message") as err:
            unpackb(data)
        assert err.value.field == "message"
    with pytest.raises(ProtocolError, match="expected a binary msgpack frame, received a text frame"):
        unpackb('{"state": [1, 2]}')
    with pytest.raises(ProtocolError, match="unknown msgpack extension type 7"):
        unpackb(msgpack.packb(msgpack.ExtType(7, b"")))
