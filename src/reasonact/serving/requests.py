"""Request validation: a decoded message → an `ObsBatch` the policy can run, or a ProtocolError naming the field.

Everything a policy could trip over is refused here, on the event loop, before the request joins a batch:
one bad request gets its own error reply and never fails the batch it would have shared with others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasonact.checks import check_finite, check_shape
from reasonact.serving.protocol import ProtocolError
from reasonact.vla.contract import PolicySpec

FIELDS = ("images", "state", "instruction")  # the request's keys, all required
MAX_INSTRUCTION_CHARS = 2000  # longer instructions are refused before any tokenizer sees them


@dataclass(frozen=True)
class ObsBatch:
    """b observations, batch first (what `ServedPolicy.infer` receives)."""

    images: dict[str, np.ndarray]  # camera → uint8 (b, S, S, 3)
    state: np.ndarray  # float32 (b, s)
    instructions: tuple[str, ...]  # b instructions

    @property
    def size(self) -> int:
        return self.state.shape[0]

    @staticmethod
    def concat(batches: Sequence[ObsBatch]) -> ObsBatch:
        """Stack requests row-wise (new, writable arrays)."""
        return ObsBatch(
            images={c: np.concatenate([b.images[c] for b in batches]) for c in batches[0].images},
            state=np.concatenate([b.state for b in batches]),
            instructions=tuple(i for b in batches for i in b.instructions),
        )


def _invalid(field: str, message: str) -> ProtocolError:
    return ProtocolError("invalid_request", field, f"{field}: {message}")


def _array(value: object, field: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise _invalid(field, f"expected a numpy array, received {type(value).__name__}")
    return value


def parse_request(message: object, spec: PolicySpec, max_batch: int) -> tuple[ObsBatch, bool]:
    """Decoded message → (observations as a batch, whether the request was batched).

    A single observation has state (s,), images (S, S, 3) and one instruction string; a batched one
    state (b, s), images (b, S, S, 3) and a list of b strings, with 1 <= b <= max_batch."""
    if not isinstance(message, dict):
        raise _invalid("request", f"expected a map with keys {list(FIELDS)}, received {type(message).__name__}")
    unknown = sorted(str(k) for k in message if k not in FIELDS)
    if unknown:
        raise _invalid("request", f"unknown field(s) {unknown}; expected exactly {list(FIELDS)}")
    missing = [k for k in FIELDS if k not in message]
    if missing:
        raise _invalid("request", f"missing field(s) {missing}; expected {list(FIELDS)}")
    state = _array(message["state"], "state")
    if state.ndim not in (1, 2):
        raise _invalid("state", f"expected shape (s,) or (b, s) with s={spec.state_dim}, received shape "
                       f"{tuple(state.shape)}")  # fmt: skip
    batched = state.ndim == 2
    b = state.shape[0] if batched else 1
    if batched and not 1 <= b <= max_batch:
        raise _invalid("state", f"expected a batch of 1 to max_batch={max_batch} observations, received {b}")
    lead: tuple = ("b",) if batched else ()
    try:
        check_shape(state, "state", (*lead, spec.state_dim), {"b": b})
        if state.dtype.kind != "f":
            raise _invalid("state", f"expected a float array, received dtype {state.dtype}")
        check_finite(state, "state")
        images = message["images"]
        if not isinstance(images, dict):
            raise _invalid("images", f"expected a map camera → uint8 image, received {type(images).__name__}")
        if set(images) != set(spec.cameras):
            raise _invalid("images", f"expected cameras {list(spec.cameras)}, received {sorted(map(str, images))}")
        for camera in spec.cameras:
            field = f"images[{camera!r}]"
            image = _array(images[camera], field)
            check_shape(image, field, (*lead, spec.image_size, spec.image_size, 3), {"b": b})
            if image.dtype != np.uint8:
                raise _invalid(field, f"expected dtype uint8 in [0, 255], received dtype {image.dtype}")
    except ProtocolError:
        raise
    except ValueError as err:  # a `reasonact.checks` message, already naming field, expected and received
        raise ProtocolError.from_value_error(err) from None
    instructions = _instructions(message["instruction"], b, batched)
    return ObsBatch(
        images={c: images[c] if batched else images[c][None] for c in spec.cameras},
        state=(state if batched else state[None]).astype(np.float32),
        instructions=instructions,
    ), batched


def _instructions(value: object, b: int, batched: bool) -> tuple[str, ...]:
    if batched:
        if not (isinstance(value, list) and len(value) == b and all(isinstance(v, str) for v in value)):
            got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
            raise _invalid("instruction", f"expected a list of b={b} strings (batched request), received {got}")
        texts = tuple(value)
    else:
        if not isinstance(value, str):
            raise _invalid("instruction", f"expected a string, received {type(value).__name__}")
        texts = (value,)
    longest = max(len(t) for t in texts)
    if longest > MAX_INSTRUCTION_CHARS:
        raise _invalid("instruction", f"expected at most {MAX_INSTRUCTION_CHARS} characters, received {longest}")
    return texts
