"""Request validation: each kind of bad request is refused with the field, what was expected and what came."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from reasonact.serving.policy import ECHO_SPEC
from reasonact.serving.protocol import ProtocolError
from reasonact.serving.requests import MAX_INSTRUCTION_CHARS, ObsBatch, parse_request


def test_single_and_batched_requests_become_batches(make_obs: Callable[..., dict]) -> None:
    one, batched = parse_request(make_obs(tag=0.5), ECHO_SPEC, max_batch=4)
    assert not batched and one.size == 1 and one.images["base"].shape == (1, 32, 32, 3)
    assert one.state.dtype == np.float32 and one.state[0, 0] == 0.5 and one.instructions == ("pick up the red cube",)
    three, batched = parse_request(make_obs(b=3), ECHO_SPEC, max_batch=4)
    assert batched and three.size == 3 and three.state.shape == (3, 8)
    both = ObsBatch.concat([one, three])
    assert both.size == 4 and both.images["base"].shape == (4, 32, 32, 3) and len(both.instructions) == 4
    assert both.state.flags.writeable and both.images["base"].flags.writeable


def _mutate(obs: dict, path: str, value: object) -> dict:
    if path.startswith("images."):
        return {**obs, "images": {**obs["images"], path.split(".", 1)[1]: value}}
    return {**obs, path: value}


@pytest.mark.parametrize(
    ("path", "value", "field", "match"),
    [
        ("state", np.zeros(3, np.float32), "state", r"expected size 8 on axis 0 of \(8\), received shape \(3,\)"),
        ("state", np.zeros((1, 2, 8), np.float32), "state", r"expected shape \(s,\) or \(b, s\) with s=8"),
        ("state", np.zeros(8, np.int64), "state", "expected a float array, received dtype int64"),
        ("state", np.full(8, np.nan, np.float32), "state", "expected finite values, received 8 NaN/inf"),
        ("state", [0.0] * 8, "state", "expected a numpy array, received list"),
        ("images.base", np.zeros((64, 64, 3), np.uint8), "images['base']", r"expected size 32 on axis 0"),
        ("images.base", np.zeros((32, 32, 3), np.float32), "images['base']", "expected dtype uint8"),
        ("images.base", np.zeros((32, 32), np.uint8), "images['base']", r"expected rank 3 \(32, 32, 3\)"),
        ("images.wrist", np.zeros((32, 32, 3), np.uint8), "images", r"expected cameras \['base'\], received"),
        ("images", [1, 2], "images", "expected a map camera"),
        ("instruction", 7, "instruction", "expected a string, received int"),
        ("instruction", "x" * (MAX_INSTRUCTION_CHARS + 1), "instruction", f"at most {MAX_INSTRUCTION_CHARS}"),
        ("observation/image", 1, "request", r"unknown field\(s\) \['observation/image'\]"),
    ],
)
def test_bad_single_requests_name_the_field(
    make_obs: Callable[..., dict], path: str, value: object, field: str, match: str
) -> None:
    with pytest.raises(ProtocolError, match=match) as err:
        parse_request(_mutate(make_obs(), path, value), ECHO_SPEC, max_batch=4)
    assert err.value.kind == "invalid_request" and err.value.field == field
    assert err.value.reply()["error"]["field"] == field


def test_missing_fields_and_non_map_requests(make_obs: Callable[..., dict]) -> None:
    obs = make_obs()
    del obs["instruction"]
    with pytest.raises(ProtocolError, match=r"missing field\(s\) \['instruction'\]"):
        parse_request(obs, ECHO_SPEC, max_batch=4)
    with pytest.raises(ProtocolError, match="expected a map with keys"):
        parse_request([1, 2, 3], ECHO_SPEC, max_batch=4)


def test_bad_batched_requests(make_obs: Callable[..., dict]) -> None:
    with pytest.raises(ProtocolError, match="expected a batch of 1 to max_batch=4 observations, received 5"):
        parse_request(make_obs(b=5), ECHO_SPEC, max_batch=4)
    obs = make_obs(b=3)
    with pytest.raises(ProtocolError, match=r"expected a list of b=3 strings .*received a list of 2"):
        parse_request({**obs, "instruction": obs["instruction"][:2]}, ECHO_SPEC, max_batch=4)
    with pytest.raises(ProtocolError, match=r"images\['base'\]: expected b=3 on axis 0"):
        parse_request({**obs, "images": {"base": obs["images"]["base"][:2]}}, ECHO_SPEC, max_batch=4)
