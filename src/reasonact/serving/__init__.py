"""Policy server: websocket + msgpack (numpy arrays), metadata on connect, batched inference; see docs/serving.md."""

from reasonact.serving.client import PolicyClient, ServerError, health
from reasonact.serving.policy import EchoPolicy, ServedPolicy, VLAPolicy, load_policy
from reasonact.serving.protocol import ProtocolError, packb, unpackb
from reasonact.serving.requests import ObsBatch, parse_request
from reasonact.serving.server import PolicyServer, ServerConfig, serve_in_thread
from reasonact.vla.contract import PolicySpec

__all__ = [
    "EchoPolicy",
    "ObsBatch",
    "PolicyClient",
    "PolicyServer",
    "PolicySpec",
    "ProtocolError",
    "ServedPolicy",
    "ServerConfig",
    "ServerError",
    "VLAPolicy",
    "health",
    "load_policy",
    "packb",
    "parse_request",
    "serve_in_thread",
    "unpackb",
]
