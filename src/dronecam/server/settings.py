"""What `dronecam serve` configures for the host server; runtime state lives elsewhere."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from ..core import protocol


class ServerSettings:
    """What `dronecam serve` configures; runtime state lives in StreamServer and Connection."""

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 8080,
        max_clients: int = protocol.MAX_CLIENTS,
        stream_timeout_ms: int = protocol.STREAM_TIMEOUT_MS,
        heartbeat_interval_ms: int = protocol.HEARTBEAT_INTERVAL_MS,
        handshake_timeout_ms: int = protocol.HANDSHAKE_TIMEOUT_MS,
        max_message_bytes: int = protocol.MAX_CLIENT_MESSAGE_BYTES,
        send_buffer_bytes: int = 32 * 1024,
        max_client_messages_per_s: int = 200,
        origins: Sequence[str] | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        viewer_html: bytes | None = None,
    ) -> None:
        if not 1 <= max_clients <= 10000:
            raise ValueError("max clients must be from 1 to 10000")
        if not 100 <= heartbeat_interval_ms <= 2000:
            raise ValueError("the heartbeat interval must be from 100 to 2000 ms")
        self.host = host
        self.port = port
        self.max_clients = max_clients
        self.stream_timeout_ms = stream_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.handshake_timeout_ms = handshake_timeout_ms
        self.max_message_bytes = max_message_bytes
        self.send_buffer_bytes = send_buffer_bytes
        # Frames a client may send a second, control frames included: an ack per camera frame
        # at 30 fps is 30; a flood of tiny frames past this is closed with 1008.
        self.max_client_messages_per_s = max_client_messages_per_s
        self.origins = list(origins) if origins else None
        self.token = token
        self.ssl_context = ssl_context
        self.viewer_html = viewer_html

    @property
    def scheme(self) -> str:
        return "wss" if self.ssl_context else "ws"

    @property
    def http_scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    def access_summary(self) -> str:
        """What access control is on, for the start-up log: never the token itself."""
        parts = [
            "TLS" if self.ssl_context else "no TLS",
            "token required" if self.token else "no token",
            "origins %s" % ", ".join(self.origins) if self.origins else "any origin",
        ]
        return ", ".join(parts)
