"""The host server's I/O layer: listens, hands each connection to its output, owns time.

It wires a feed and a hub to the listening socket, sends heartbeats framed once for every
client, and runs the timeouts (docs/architecture.md §Host server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..core import protocol
from ..core.compat import MonotonicClock, ticks_ms
from ..core.hub import Hub
from ..core.source import Feed
from ..core.status import ServerStatus, banner
from ..core.websocket import OP_TEXT, frame
from ..outputs import ClientOutput, StreamOutput
from ..outputs.http import routes_of
from ..outputs.websocket import Connection
from .accept_errors import AcceptErrors
from .settings import ServerSettings

if TYPE_CHECKING:
    from .cameras import CameraSet

log = logging.getLogger("dronecam.server")

CLOSE_GRACE_TICKS = 20  # of 100 ms: how long stop() waits for clients to answer a close


def raise_open_files_limit(connections: int) -> None:
    """Raise this process's soft open-file limit to fit `connections` sockets (up to the hard one)."""
    needed = connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, top), hard))


class StreamServer:
    """Wires a feed, a hub and the listening socket; sends heartbeats; enforces timeouts."""

    def __init__(
        self,
        feed: Feed,
        settings: ServerSettings | None = None,
        clock: MonotonicClock | None = None,
        outputs: Sequence[StreamOutput] = (),
    ) -> None:
        self.feed = feed
        self.hub: Hub = feed.hub
        self.settings = settings or ServerSettings()
        self.clock = clock or feed.clock
        self.connections: set[ClientOutput] = set()
        self.outputs = list(outputs)
        self.status = ServerStatus(
            feed,
            self.settings.max_clients,
            self.settings.heartbeat_interval_ms,
            self.settings.stream_timeout_ms,
            self._outputs_status,
            self.clock,
        )
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.on_heartbeat: Callable[[str], None] | None = None
        # A NATS edge of every camera (`nats://HOST:PORT/*`): one feed per camera asked for.
        self.cameras: CameraSet | None = None
        self.accept_errors = AcceptErrors(self.drop_closing)

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose, for port 0)."""
        assert self._port is not None, "start() the server first"
        return self._port

    @property
    def url(self) -> str:
        return self.url_for(protocol.WS_PATH)

    def url_for(self, path: str) -> str:
        """The URL of one of its paths: ws(s):// for /ws, http(s):// for an HTTP output's."""
        host = (
            self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        )
        scheme = self.settings.scheme if path == protocol.WS_PATH else self.settings.http_scheme
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    async def start(self) -> None:
        raise_open_files_limit(self.settings.max_clients)
        loop = asyncio.get_running_loop()
        self.accept_errors.install(loop)
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.settings.host,
            self.settings.port,
            # No ssl=: TLS is each connection's own (outputs/tls.py), its handshake timed
            # by check_timeouts like the WebSocket one.
            reuse_address=True,
            backlog=1024,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        for output in self.outputs:
            await output.start(self.hub)
        self._tasks = [
            asyncio.create_task(self.feed.run()),
            asyncio.create_task(self._housekeeping()),
        ]
        notes = []
        if self.settings.host in ("0.0.0.0", "::", ""):
            notes.append(
                "Listening on all interfaces: use this machine's address from other devices, "
                "e.g. %s://<address>:%d%s" % (self.settings.scheme, self.port, protocol.WS_PATH)
            )
        notes.append("Access: %s" % self.settings.access_summary())
        http_urls = [self.url_for(path) for path in sorted(routes_of(self.outputs))]
        for line in banner(self.url, bool(self.settings.viewer_html), http_urls, notes):
            log.info("[VideoStreamServer] %s", line)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for output in self.outputs:
            await output.stop()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close(protocol.CLOSE_GOING_AWAY, "server shutting down")
        # Clients get a moment to answer the close frame; then their sockets are dropped, or
        # wait_closed() (which waits for every connection since Python 3.12) could hang.
        for _ in range(CLOSE_GRACE_TICKS):
            if not self.connections:
                break
            await asyncio.sleep(0.1)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)  # let connection_lost() run for the aborted ones
        if self._server is not None:
            await self._server.wait_closed()
        self.accept_errors.uninstall()

    def drop_closing(self) -> None:
        """Out of descriptors: drop at once the clients that were closing anyway."""
        for connection in list(self.connections):
            if (
                isinstance(connection, Connection)
                and connection.closing_since_ms is not None
                and connection.transport is not None
            ):
                connection.transport.abort()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _housekeeping(self) -> None:
        interval_s = self.settings.heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            self.send_heartbeat()
            now_ms = ticks_ms()
            for connection in list(self.connections):
                connection.check_timeouts(now_ms)

    def send_heartbeat(self) -> None:
        text = self.status.heartbeat_message()
        messages = {id(self.status): frame(OP_TEXT, text.encode())}
        for connection in list(self.connections):
            # Framed once per camera: a NATS edge's clients each hear their own camera's.
            status = getattr(connection, "status", self.status)
            message = messages.get(id(status))
            if message is None:
                message = frame(OP_TEXT, status.heartbeat_message().encode())
                messages[id(status)] = message
            connection.write_framed(message)
        if self.on_heartbeat is not None:
            self.on_heartbeat(text)

    def status_for(self, camera: str | None) -> ServerStatus | None:
        """The status (feed, hub) a client asking for `camera` watches; None: no such camera."""
        if self.cameras is None:
            return self.status if camera is None else None
        return self.cameras.status_for(camera, self.status)

    def no_camera_text(self, camera: str | None) -> str:
        if self.cameras is None:
            return "This server has one camera: use %s without ?camera=\n" % protocol.WS_PATH
        return "No camera %r here. Live: %s\n" % (camera, ", ".join(self.cameras.names()) or "none")

    def status_fields(self) -> dict:
        """What a heartbeat says, the source's description, and where to connect (a publisher's)."""
        fields = json.loads(self.status.welcome_message())
        del fields["type"], fields["message"]
        fields.update(json.loads(self.status.heartbeat_message()))
        del fields["type"]
        url = self.url
        if self.settings.host in ("0.0.0.0", "::", ""):
            # Seen from another machine (the fleet), 127.0.0.1 would be that machine: say ours.
            url = url.replace("//127.0.0.1:", "//%s:" % socket.gethostname(), 1)
        fields["url"] = url
        return fields

    def _outputs_status(self) -> dict:
        fields: dict = {}
        for output in self.outputs:
            fields.update(output.status())
        return fields
