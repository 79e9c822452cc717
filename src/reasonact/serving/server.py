"""The policy server: one asyncio event loop for every client's websocket I/O, one inference thread for the model.

Each connection gets the metadata, then loops request → reply (`protocol.py`). Requests are decoded and
validated on the event loop and queued; the inference thread takes everything queued (up to `max_batch`
observations) as one batch, so concurrent clients share a forward pass instead of waiting for each other's
(dynamic batching; `max_batch=1` is a plain lock around the model). The loop never runs the model, so a
slow or vanished client never delays another's reply. `GET /healthz` answers plain HTTP with JSON counters.

Messages up to `max_message_bytes` are read and answered; up to `HARD_LIMIT_FACTOR` times that they are
read and refused with an error reply (the connection stays open); larger ones close the connection with
code 1009 (message too big) before they are buffered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from reasonact.checks import check_range
from reasonact.serving.policy import ServedPolicy
from reasonact.serving.protocol import PROTOCOL_VERSION, ProtocolError, packb, unpackb
from reasonact.serving.requests import ObsBatch, parse_request

log = logging.getLogger(__name__)
HARD_LIMIT_FACTOR = 4  # messages above this multiple of max_message_bytes are not read at all


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # interface to bind; "0.0.0.0" to accept robots on the network
    port: int = 8000  # TCP port; 0 picks a free one (printed when ready)
    max_batch: int = 32  # most observations per forward pass (1 = no batching, one request at a time)
    max_message_bytes: int = 8 << 20  # requests above this get an error reply (see the module docstring)
    ping_interval_s: float = 20.0  # websocket keep-alive ping period; dead peers are dropped after one more

    def __post_init__(self) -> None:
        check_range(self.port, "port", 0, 65535)
        check_range(self.max_batch, "max_batch", low=1)
        check_range(self.max_message_bytes, "max_message_bytes", low=1024)


@dataclass
class _Pending:
    obs: ObsBatch
    future: asyncio.Future
    queued: float  # perf_counter at submission


class Batcher:
    """Queue of validated requests → one `policy.infer` per batch on a single inference thread."""

    def __init__(self, policy: ServedPolicy, max_batch: int) -> None:
        self.policy = policy
        self.max_batch = max_batch
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self.batches = 0

    async def infer(self, obs: ObsBatch) -> tuple[np.ndarray, dict[str, float]]:
        """(b, H, d) actions for this request and its timing; raises what the policy raised."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(obs, future, time.perf_counter()))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry or await self.queue.get()
            group, rows, carry = [first], first.obs.size, None
            while not self.queue.empty():
                nxt = self.queue.get_nowait()
                if rows + nxt.obs.size > self.max_batch:
                    carry = nxt
                    break
                group.append(nxt)
                rows += nxt.obs.size
            group = [p for p in group if not p.future.done()]  # cancelled while queued
            if group:
                await self._run_batch(loop, group)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, group: list[_Pending]) -> None:
        start = time.perf_counter()
        try:
            actions = await loop.run_in_executor(self.executor, self._infer, [p.obs for p in group])
        except Exception as err:
            if len(group) > 1:  # find the culprit: each request alone, so only the one that fails gets the error
                for p in group:
                    await self._run_batch(loop, [p])
                return
            log.exception("policy.infer failed")
            if not group[0].future.done():
                group[0].future.set_exception(err)
            return
        infer_ms = (time.perf_counter() - start) * 1e3
        self.batches += 1
        offset = 0
        for p in group:
            n = p.obs.size
            if not p.future.done():
                timing = {"queue_ms": (start - p.queued) * 1e3, "infer_ms": infer_ms, "batch": len(group)}
                p.future.set_result((actions[offset : offset + n], timing))
            offset += n

    def _infer(self, requests: list[ObsBatch]) -> np.ndarray:
        """On the inference thread: stack the requests (off the event loop: big images copy), run, check."""
        obs = ObsBatch.concat(requests)
        actions = np.asarray(self.policy.infer(obs), dtype=np.float32)  # (b, H, d)
        spec = self.policy.spec
        expected = (obs.size, spec.horizon, spec.action_dim)
        if actions.shape != expected or not np.isfinite(actions).all():
            raise RuntimeError(f"policy returned actions of shape {actions.shape} (finite: "
                               f"{bool(np.isfinite(actions).all())}), expected finite {expected}")  # fmt: skip
        return actions


class PolicyServer:
    """Serves one policy to any number of websocket clients (see the module docstring)."""

    def __init__(self, policy: ServedPolicy, config: ServerConfig = ServerConfig()) -> None:
        self.policy = policy
        self.config = config
        self.counts = {"connections": 0, "open": 0, "replies": 0, "errors": 0}
        self.batcher: Batcher | None = None  # exists while serving
        self.metadata = {
            "protocol": PROTOCOL_VERSION,
            "spec": policy.spec.to_dict(),
            "limits": {"max_batch": config.max_batch, "max_message_bytes": config.max_message_bytes},
            **policy.metadata,
        }
        self._metadata_msg = packb(self.metadata)

    async def serve(self, ready: Callable[[Server], None] | None = None) -> None:
        """Run until cancelled; `ready(server)` is called once the socket listens."""
        batcher = self.batcher = Batcher(self.policy, self.config.max_batch)
        cfg = self.config
        async with serve(
            lambda ws: self._connection(ws, batcher), cfg.host, cfg.port,
            process_request=self._health, compression=None,
            max_size=cfg.max_message_bytes * HARD_LIMIT_FACTOR,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_interval_s,
        ) as server:  # fmt: skip
            worker = asyncio.create_task(batcher.run())
            if ready is not None:
                ready(server)
            try:
                await server.serve_forever()
            finally:
                worker.cancel()
                batcher.executor.shutdown(wait=False, cancel_futures=True)

    def _health(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != "/healthz":
            return None  # a websocket handshake
        batches = self.batcher.batches if self.batcher else 0
        body = {"status": "ok", "policy": self.metadata.get("policy"), **self.counts, "batches": batches}
        response = connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
        del response.headers["Content-Type"]  # Headers is a multi-dict: replace text/plain, do not add a second
        response.headers["Content-Type"] = "application/json"
        return response

    async def _connection(self, ws: ServerConnection, batcher: Batcher) -> None:
        self.counts["connections"] += 1
        self.counts["open"] += 1
        try:
            await ws.send(self._metadata_msg)
            async for message in ws:
                await ws.send(packb(await self._reply(message, batcher)))
        except ConnectionClosed:
            pass  # the client left (possibly mid-request): its reply is discarded, its batch unaffected
        finally:
            self.counts["open"] -= 1

    async def _reply(self, message: bytes | str, batcher: Batcher) -> dict[str, Any]:
        received = time.perf_counter()
        try:
            if len(message) > self.config.max_message_bytes:
                raise ProtocolError("invalid_request", "message", f"message: expected at most max_message_bytes="
                                    f"{self.config.max_message_bytes} bytes, received {len(message)}")  # fmt: skip
            obs, batched = parse_request(unpackb(message), self.policy.spec, self.config.max_batch)
            try:
                self.policy.check(obs)
            except ValueError as err:
                raise ProtocolError.from_value_error(err) from None
            actions, timing = await batcher.infer(obs)
        except ProtocolError as err:
            self.counts["errors"] += 1
            return err.reply()
        except Exception as err:  # the policy failed; the server keeps serving
            self.counts["errors"] += 1
            return ProtocolError(
                "internal", "policy", f"policy: inference failed ({type(err).__name__}: {err})"
            ).reply()
        self.counts["replies"] += 1
        timing["server_ms"] = (time.perf_counter() - received) * 1e3
        return {"actions": actions if batched else actions[0], "timing": timing}


@contextmanager
def serve_in_thread(policy: ServedPolicy, config: ServerConfig = ServerConfig(port=0)) -> Iterator[str]:
    """Run a PolicyServer on a background thread's event loop; yields its ws:// URL, stops it on exit."""
    started = threading.Event()
    state: dict[str, Any] = {}

    def ready(server: Server) -> None:
        state["port"] = server.sockets[0].getsockname()[1]
        started.set()

    def main() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        state["task"] = loop.create_task(PolicyServer(policy, config).serve(ready))
        try:
            loop.run_until_complete(state["task"])
        except (asyncio.CancelledError, Exception) as err:
            state["error"] = err
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=main, name="policy-server", daemon=True)
    thread.start()
    started.wait()
    if "port" not in state:
        raise RuntimeError(f"policy server failed to start: {state.get('error')!r}")
    try:
        yield f"ws://{config.host}:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["task"].cancel)
        thread.join(timeout=10)
