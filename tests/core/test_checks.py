from __future__ import annotations

import numpy as np
import pytest
import torch

from reasonact.checks import as_float_array, check_range, check_shape


def test_symbolic_dims_bind_and_must_agree() -> None:
    assert check_shape(np.zeros((2, 5, 5)), "x", ("b", "n", "n")) == {"b": 2, "n": 5}
    with pytest.raises(ValueError, match=r"x: expected n=5 on axis 2 of \(b, n, n\), received shape \(2, 5, 4\)"):
        check_shape(np.zeros((2, 5, 4)), "x", ("b", "n", "n"))
    with pytest.raises(ValueError, match=r"state: expected size 8 on axis 1"):
        check_shape(torch.zeros(3, 7), "state", ("b", 8))
    with pytest.raises(ValueError, match=r"images: expected b=2"):
        check_shape(torch.zeros(3, 7), "images", ("b", None), bound={"b": 2})


def test_as_float_array_rejects_nan_and_non_numeric() -> None:
    with pytest.raises(ValueError, match=r"a: expected finite values, received 1 NaN/inf \(first at index \(1,\)\)"):
        as_float_array([0.0, float("inf")], "a", ("n",))
    with pytest.raises(ValueError, match="a: expected a numeric array"):
        as_float_array(["x"], "a", ("n",))


def test_check_range() -> None:
    check_range(0.5, "p", 0, 1)
    with pytest.raises(ValueError, match=r"p: expected a value in \[0, 1\], received 2"):
        check_range(2, "p", 0, 1)
    with pytest.raises(ValueError, match="received nan"):
        check_range(float("nan"), "p", 0, 1)
