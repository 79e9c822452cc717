"""Python client of the policy server: connect, read the metadata, `infer(obs)` → {"actions", "timing"}.

    with PolicyClient("ws://127.0.0.1:8000") as client:
        print(client.metadata["spec"])          # cameras, image_size, state_dim, action_dim, horizon
        reply = client.infer(env_obs)            # {"images": {...}, "state": (s,), "instruction": str}
        chunk = reply["actions"]                 # (H, d) float32; (b, H, d) for a batched request

It is also an `evaluation` policy (`reset` / `act`), so a served model runs in the evaluation harness.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from reasonact.serving.protocol import PROTOCOL_VERSION, packb, unpackb


class ServerError(RuntimeError):
    """The server answered with an error reply (`kind`, the `field` it names, the message)."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.field = field


class PolicyClient:
    """One websocket connection to a policy server; `wait_s` retries while the server is starting."""

    def __init__(self, url: str = "ws://127.0.0.1:8000", wait_s: float = 0.0, timeout_s: float = 60.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.ws = self._connect(wait_s)
        self.metadata: dict[str, Any] = unpackb(self.ws.recv(timeout=timeout_s))
        if self.metadata.get("protocol") != PROTOCOL_VERSION:
            self.ws.close()
            raise ValueError(f"protocol: server at {url} speaks version {self.metadata.get('protocol')!r}, "
                             f"this client {PROTOCOL_VERSION}")  # fmt: skip

    def _connect(self, wait_s: float) -> ClientConnection:
        deadline = time.monotonic() + wait_s
        while True:
            try:  # entered as a context manager (websockets deprecates bare connections); `close` exits it
                return connect(self.url, compression=None, max_size=None, open_timeout=self.timeout_s).__enter__()
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """One observation (or a batch) → {"actions": (H, d) | (b, H, d), "timing": {...}}; raises ServerError."""
        message = packb({k: obs[k] for k in ("images", "state", "instruction") if k in obs})
        limit = self.metadata["limits"]["max_message_bytes"]
        if len(message) > limit:
            raise ValueError(f"obs: encoded request is {len(message)} bytes, the server accepts at most {limit} "
                             f"(images must be {self.metadata['spec']['image_size']} px squares)")  # fmt: skip
        self.ws.send(message)
        try:
            reply = unpackb(self.ws.recv(timeout=self.timeout_s))
        except ConnectionClosed as err:
            raise ServerError("closed", "message", f"server closed the connection ({err})") from err
        if "error" in reply:
            error = reply["error"]
            raise ServerError(error["kind"], error["field"], error["message"])
        return reply

    def reset(self) -> None:
        """Stateless: the server keeps no per-episode memory."""

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """`evaluation.Policy`: one observation → its action chunk (H, d)."""
        return self.infer(obs)["actions"]

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def health(url: str = "ws://127.0.0.1:8000", timeout_s: float = 5.0) -> dict[str, Any]:
    """GET /healthz of the server at a ws:// URL → its JSON (status, policy, connection and reply counters)."""
    http_url = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/") + "/healthz"
    with urllib.request.urlopen(http_url, timeout=timeout_s) as response:
        return json.loads(response.read())
