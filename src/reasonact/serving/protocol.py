"""The policy server's wire format: msgpack messages carrying numpy arrays, over websocket binary frames.

A conversation (openpi's serving protocol in spirit; not wire-compatible with it):

    server → client   metadata   {"protocol": 1, "policy": ..., "spec": PolicySpec fields, "limits": ...}
    client → server   request    {"images": {camera: uint8 (S, S, 3)}, "state": float (s,), "instruction": str}
                                 or a batch: images (b, S, S, 3), state (b, s), instruction [b × str]
    server → client   reply      {"actions": float32 (H, d) or (b, H, d), "timing": {...}}
                      or         {"error": {"kind": ..., "field": ..., "message": ...}}

and the request/reply pair repeats. An error reply leaves the connection open. Arrays travel as a msgpack
extension (type `NDARRAY_EXT`) holding `[dtype string, shape, raw bytes]`, so they cost one copy each way;
only numeric and bool dtypes are accepted (never pickled objects).
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1  # bumped when a message changes shape
NDARRAY_EXT = 1  # msgpack extension type code of a numpy array
MAX_NDIM = 8  # arrays of higher rank are refused (no observation needs them)
ARRAY_KINDS = "biuf"  # numpy dtype kinds that may travel: bool, int, uint, float

ErrorKind = str  # "bad_message" (not decodable), "invalid_request" (decodable, wrong content), "internal"


class ProtocolError(ValueError):
    """A message the server cannot answer with actions; becomes an error reply naming `field`."""

    def __init__(self, kind: ErrorKind, field: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field

    @classmethod
    def from_value_error(cls, err: ValueError, kind: ErrorKind = "invalid_request") -> ProtocolError:
        """A `reasonact.checks` message starts with the field it names ("state: expected ...")."""
        text = str(err)
        head = text.split(":", 1)[0]
        return cls(kind, head if head and " " not in head else "request", text)

    def reply(self) -> dict[str, Any]:
        return {"error": {"kind": self.kind, "field": self.field, "message": str(self)}}


def _encode(obj: object) -> object:
    """msgpack `default` hook: numpy arrays and scalars → extension / python scalars."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ARRAY_KINDS:
            raise TypeError(f"array: dtype {obj.dtype} cannot travel; expected bool, int, uint or float")
        data = obj.tobytes(order="C")  # copies a non-contiguous view into row-major order
        return msgpack.ExtType(NDARRAY_EXT, msgpack.packb([obj.dtype.str, list(obj.shape), data]))
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}; expected dict, list, str, number, bytes or numpy array")


def _decode_ext(code: int, data: bytes) -> object:
    """msgpack `ext_hook`: extension → numpy array, refusing anything that does not describe one exactly."""
    if code != NDARRAY_EXT:
        raise ProtocolError("bad_message", "array", f"array: unknown msgpack extension type {code}; "
                            f"expected {NDARRAY_EXT} (numpy array)")  # fmt: skip
    header = msgpack.unpackb(data)
    if not (isinstance(header, list) and len(header) == 3 and isinstance(header[2], bytes)):
        raise ProtocolError("bad_message", "array", "array: expected [dtype, shape, bytes] in the extension")
    dtype_str, shape, raw = header
    try:
        dtype = np.dtype(dtype_str)
    except TypeError as err:
        raise ProtocolError("bad_message", "array", f"array: unknown dtype {dtype_str!r}") from err
    if dtype.kind not in ARRAY_KINDS:
        raise ProtocolError("bad_message", "array", f"array: dtype {dtype_str!r} refused; expected bool, int, "
                            "uint or float")  # fmt: skip
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ProtocolError("bad_message", "array", f"array: expected a shape of at most {MAX_NDIM} sizes >= 0, "
                            f"received {shape!r}")  # fmt: skip
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise ProtocolError("bad_message", "array", f"array: shape {tuple(shape)} of {dtype} needs "
                            f"{math.prod(shape) * dtype.itemsize} bytes, received {len(raw)}")  # fmt: skip
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(shape))  # read-only view of the message bytes


def packb(obj: object) -> bytes:
    """Python/numpy message → msgpack bytes."""
    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpackb(data: bytes | str) -> Any:
    """msgpack bytes → message; anything undecodable raises ProtocolError("bad_message")."""
    if isinstance(data, str):
        raise ProtocolError("bad_message", "message", "message: expected a binary msgpack frame, received a text "
                            f"frame of {len(data)} characters")  # fmt: skip
    try:
        return msgpack.unpackb(data, ext_hook=_decode_ext, raw=False)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as err:  # ExtraData, FormatError, StackError, UTF-8
        raise ProtocolError("bad_message", "message", f"message: not a msgpack message ({err})") from err
