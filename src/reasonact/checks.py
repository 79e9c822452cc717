"""Boundary checks: every public function validates its inputs with these, so bad input fails
early with a message naming the argument, the expected shape/range and what was received,
instead of a silent broadcast or a NaN three modules later."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Dims = Sequence[int | str | None]


def _describe(x: np.ndarray | torch.Tensor) -> str:
    return f"shape {tuple(x.shape)} dtype {x.dtype}"


def check_shape(
    x: np.ndarray | torch.Tensor, name: str, dims: Dims, bound: dict[str, int] | None = None
) -> dict[str, int]:
    """Check `x` against symbolic `dims` and return the resolved sizes.

    `dims` mixes ints (fixed size), strings (named sizes, equal wherever a name repeats, and
    equal to `bound[name]` when given) and None (any size)::

        >>> check_shape(np.zeros((2, 50, 7)), "chunks", ("b", "H", 7))
        {'b': 2, 'H': 50}
    """
    sizes = dict(bound or {})
    expected = "(" + ", ".join("*" if d is None else str(d) for d in dims) + ")"
    if x.ndim != len(dims):
        raise ValueError(f"{name}: expected rank {len(dims)} {expected}, received {_describe(x)}")
    for axis, (dim, size) in enumerate(zip(dims, x.shape, strict=True)):
        if dim is None:
            continue
        if isinstance(dim, int):
            if size != dim:
                raise ValueError(f"{name}: expected size {dim} on axis {axis} of {expected}, received {_describe(x)}")
            continue
        if dim in sizes and sizes[dim] != size:
            raise ValueError(
                f"{name}: expected {dim}={sizes[dim]} on axis {axis} of {expected}, received {_describe(x)}"
            )
        sizes[dim] = int(size)
    return {k: v for k, v in sizes.items() if isinstance(k, str)}


def check_finite(x: np.ndarray | torch.Tensor, name: str) -> None:
    """Refuse NaN/inf with the count and the first bad index."""
    bad = ~np.isfinite(x) if isinstance(x, np.ndarray) else ~torch.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in (np.argwhere(bad)[0] if isinstance(x, np.ndarray) else bad.nonzero()[0]))
        raise ValueError(f"{name}: expected finite values, received {int(bad.sum())} NaN/inf (first at index {first})")


def as_float_array(x: object, name: str, dims: Dims, bound: dict[str, int] | None = None) -> np.ndarray:
    """Convert to float64 numpy, then check shape and finiteness."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a numeric array {tuple(dims)}, received {type(x).__name__}") from err
    check_shape(arr, name, dims, bound)
    check_finite(arr, name)
    return arr


def check_range(value: float, name: str, low: float | None = None, high: float | None = None) -> None:
    """Scalar hyper-parameter range check: `low <= value <= high`."""
    if (low is not None and value < low) or (high is not None and value > high) or value != value:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], received {value!r}")
