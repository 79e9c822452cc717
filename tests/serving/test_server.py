"""A real server on a loopback port: metadata, health, concurrent clients, batching, bad input, vanished
clients, a failing policy, and the tiny KI-VLA end to end."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from reasonact.serving import (
    EchoPolicy,
    ObsBatch,
    PolicyClient,
    ServerConfig,
    ServerError,
    health,
    load_policy,
    packb,
    serve_in_thread,
    unpackb,
)
from reasonact.serving.policy import ECHO_SPEC

LIMIT = 64 << 10  # max_message_bytes of the test server: a 32 px request is ~3.2 kB


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(EchoPolicy(delay_s=0.05), ServerConfig(port=0, max_batch=8, max_message_bytes=LIMIT)) as u:
        yield u


@contextmanager
def raw(url: str) -> Iterator[ClientConnection]:
    """A bare websocket (for hand-made messages); the metadata is read and dropped."""
    with connect(url, compression=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=10))
        yield ws


def test_metadata_on_connect_and_health(url: str, make_obs: Callable[..., dict]) -> None:
    with PolicyClient(url) as client:
        assert client.metadata["protocol"] == 1 and client.metadata["policy"] == "echo"
        assert client.metadata["spec"] == ECHO_SPEC.to_dict()
        assert client.metadata["limits"] == {"max_batch": 8, "max_message_bytes": LIMIT}
        before = health(url)
        reply = client.infer(make_obs(tag=0.25))
        assert before["status"] == "ok" and before["open"] >= 1
    assert reply["actions"].shape == (10, 7) and reply["actions"].dtype == np.float32
    np.testing.assert_array_equal(reply["actions"][:, 0], np.full(10, 0.25, np.float32))
    assert set(reply["timing"]) == {"queue_ms", "infer_ms", "batch", "server_ms"}
    assert reply["timing"]["infer_ms"] >= 50.0 and reply["timing"]["server_ms"] >= reply["timing"]["infer_ms"]
    with urllib.request.urlopen(url.replace("ws://", "http://") + "/healthz", timeout=10) as response:
        assert response.status == 200 and response.headers.get_all("Content-Type") == ["application/json"]
    after = health(url)
    assert after["replies"] >= before["replies"] + 1 and after["batches"] >= before["batches"] + 1


def test_batched_request_answers_each_row(url: str, make_obs: Callable[..., dict]) -> None:
    obs = make_obs(b=3)
    obs["state"][:, 0] = [1.0, 2.0, 3.0]
    with PolicyClient(url) as client:
        actions = client.infer(obs)["actions"]
    assert actions.shape == (3, 10, 7)
    np.testing.assert_array_equal(actions[:, :, 0], np.repeat([[1.0], [2.0], [3.0]], 10, axis=1))


def test_concurrent_clients_share_batches_and_get_their_own_answers(url: str, make_obs: Callable[..., dict]) -> None:
    n, rounds = 8, 3
    results: dict[int, list] = {i: [] for i in range(n)}
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        with PolicyClient(url) as client:
            barrier.wait()
            for r in range(rounds):
                reply = client.infer(make_obs(tag=float(i * 10 + r), seed=i))
                results[i].append((reply["actions"][0, 0], reply["timing"]["batch"]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i in range(n):
        assert [a for a, _ in results[i]] == [float(i * 10 + r) for r in range(rounds)]  # its own, in order
    assert max(b for rs in results.values() for _, b in rs) > 1  # requests that waited shared a forward pass


def test_slow_inference_does_not_block_io(make_obs: Callable[..., dict]) -> None:
    """While a 2.5 s forward pass runs, health checks, new connections and bad requests are answered at once
    (a blocked event loop would answer them only after the pass, ≥ 2.3 s later)."""

    def slow_request() -> None:
        with PolicyClient(url) as client:
            client.infer(make_obs())

    with serve_in_thread(EchoPolicy(delay_s=2.5)) as url:
        slow = threading.Thread(target=slow_request)
        slow.start()
        time.sleep(0.2)
        start = time.perf_counter()
        assert health(url)["status"] == "ok"
        with PolicyClient(url) as client, pytest.raises(ServerError, match="state"):
            client.infer({**make_obs(), "state": np.zeros(2, np.float32)})
        assert time.perf_counter() - start < 1.5
        slow.join(timeout=30)


@pytest.mark.parametrize(
    ("message", "kind", "field"),
    [
        (b"\xc1not msgpack", "bad_message", "message"),
        ("a text frame", "bad_message", "message"),
        (packb([1, 2, 3]), "invalid_request", "request"),
        (packb({"images": {}, "state": np.zeros(8, np.float32), "instruction": "x"}), "invalid_request", "images"),
        (b"\0" * (LIMIT + 1), "invalid_request", "message"),  # oversized: refused before decoding
    ],
)
def test_bad_messages_get_error_replies_and_the_connection_keeps_serving(
    url: str, make_obs: Callable[..., dict], message: bytes | str, kind: str, field: str
) -> None:
    with raw(url) as ws:
        ws.send(message)
        error = unpackb(ws.recv(timeout=10))["error"]
        assert (error["kind"], error["field"]) == (kind, field) and error["message"].startswith(field)
        ws.send(packb(make_obs(tag=3.0)))
        assert unpackb(ws.recv(timeout=10))["actions"][0, 0] == 3.0


def test_a_message_far_over_the_limit_closes_only_its_connection(url: str, make_obs: Callable[..., dict]) -> None:
    with PolicyClient(url) as bystander, raw(url) as ws:
        ws.send(b"\0" * (5 * LIMIT))
        with pytest.raises(ConnectionClosedError) as err:
            ws.recv(timeout=10)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1009  # message too big
        assert bystander.infer(make_obs(tag=1.0))["actions"][0, 0] == 1.0
    with PolicyClient(url) as client:
        assert client.infer(make_obs(tag=2.0))["actions"][0, 0] == 2.0


def test_client_refuses_to_send_an_oversized_request(url: str, make_obs: Callable[..., dict]) -> None:
    obs = make_obs()
    obs["images"]["base"] = np.zeros((256, 256, 3), np.uint8)
    with PolicyClient(url) as client, pytest.raises(ValueError, match=f"the server accepts at most {LIMIT}"):
        client.infer(obs)


def test_a_client_vanishing_mid_request_hurts_no_one(url: str, make_obs: Callable[..., dict]) -> None:
    with PolicyClient(url) as bystander:
        for _ in range(3):
            with raw(url) as ws:
                ws.send(packb(make_obs(tag=9.0)))  # and gone before its reply
        assert bystander.infer(make_obs(tag=4.0))["actions"][0, 0] == 4.0
        deadline = time.monotonic() + 5
        while health(url)["open"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health(url)["open"] == 1  # only the bystander


class FlakyPolicy(EchoPolicy):
    """Raises when any observation has a negative first state value (a model bug), echoes otherwise."""

    calls = 0  # infer calls, failed ones included

    def infer(self, obs: ObsBatch) -> np.ndarray:
        self.calls += 1
        if (obs.state[:, 0] < 0).any():
            raise RuntimeError("model exploded")
        return super().infer(obs)


def test_a_failing_policy_gets_an_internal_error_reply_and_the_server_keeps_serving(
    make_obs: Callable[..., dict],
) -> None:
    with serve_in_thread(FlakyPolicy()) as url, PolicyClient(url) as client:
        with pytest.raises(ServerError, match="policy: inference failed \\(RuntimeError: model exploded\\)") as err:
            client.infer(make_obs(tag=-1.0))
        assert err.value.kind == "internal" and err.value.field == "policy"
        assert client.infer(make_obs(tag=1.0))["actions"][0, 0] == 1.0


def test_a_request_that_breaks_the_policy_does_not_fail_the_batch_it_shared(make_obs: Callable[..., dict]) -> None:
    """A bad and a good request queue up behind a 1 s pass, share the next batch, which raises; the server
    re-runs them one by one, so only the bad one gets the error."""
    replies: dict[float, object] = {}

    def send(tag: float) -> None:
        with PolicyClient(url) as client:
            try:
                replies[tag] = client.infer(make_obs(tag=tag))["actions"][0, 0]
            except ServerError as err:
                replies[tag] = err

    policy = FlakyPolicy(delay_s=1.0)
    with serve_in_thread(policy) as url:
        threads = [threading.Thread(target=send, args=(tag,)) for tag in (1.0, -1.0, 2.0)]
        threads[0].start()
        time.sleep(0.3)  # the blocker's pass is running; the next two queue together
        for t in threads[1:]:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert policy.calls == 4  # the blocker, the pair (raises), then each of the pair alone
    assert replies[1.0] == 1.0 and replies[2.0] == 2.0
    assert isinstance(replies[-1.0], ServerError) and replies[-1.0].kind == "internal"


def test_tiny_vla_end_to_end(make_obs: Callable[..., dict]) -> None:
    with serve_in_thread(load_policy("tiny")) as url, PolicyClient(url) as client:
        assert client.metadata["variant"] == "ki" and client.metadata["parameters"] > 0
        one = client.infer(make_obs())["actions"]
        many = client.infer(make_obs(b=3))["actions"]
        assert one.shape == (10, 7) and many.shape == (3, 10, 7)
        assert np.isfinite(many).all() and one.std() > 0  # random weights + flow noise: a real, varied chunk
        with pytest.raises(ServerError, match=r"prompts\[0\]: prompt too long: expected at most") as err:
            client.infer({**make_obs(), "instruction": "x" * 100})
        assert err.value.field == "prompts[0]"


def test_load_policy_names() -> None:
    with pytest.raises(ValueError, match="policy: expected 'echo', a VLA size"):
        load_policy("tinyy")
    with pytest.raises(FileNotFoundError, match="is neither a `reasonact vla train` run directory"):
        load_policy(".")
    with pytest.raises(ValueError, match=r"cannot import 'nope\.nothing:factory'"):
        load_policy("nope.nothing:factory")
    assert load_policy("reasonact.serving.policy:EchoPolicy").metadata["policy"] == "echo"
    with pytest.raises(ValueError, match="returned dict, expected a ServedPolicy"):
        load_policy("builtins:dict")
