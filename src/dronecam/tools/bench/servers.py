"""The servers the benchmark compares, each run in its own process so its CPU is its own.

`dronecam` is the real StreamServer. The baselines serve the same source with the same
protocol messages on `websockets`' asyncio server, as people write them: `broadcast`
hands each frame to `websockets.broadcast`, `naive` awaits each client's `send` in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import logging
import time
from collections.abc import Iterator
from typing import Any

from websockets.exceptions import ConnectionClosed

from ...core import protocol
from ...core.protocol import ProtocolError
from ...server import raise_open_files_limit

SERVER_KINDS = ("dronecam", "broadcast", "naive")


@contextlib.contextmanager
def runner(uvloop: bool) -> Iterator[asyncio.Runner]:
    """An asyncio runner on uvloop's loop if asked for (the `fast` extra), else the default."""
    factory = None
    if uvloop:
        import uvloop as fast_loop

        factory = fast_loop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        yield loop_runner


def server_process(kind: str, options: dict[str, Any], queue, stop) -> None:
    """Run one server until `stop` is set or its deadline passes; its URL goes to `queue`.

    With options["profile"] set to a path, the server runs under cProfile and dumps there.
    """
    raise_open_files_limit(options["max_clients"])
    # When a thousand clients leave at once, asyncio warns once per write to each dead socket.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    profiler = cProfile.Profile() if options.get("profile") else None
    with runner(options["uvloop"]) as loop_runner:
        if profiler is not None:
            profiler.enable()
        try:
            loop_runner.run(_serve(kind, options, queue, stop))
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(options["profile"])


async def _serve(kind: str, options: dict[str, Any], queue, stop) -> None:
    from ...sources import SourceSettings, make_source

    source = make_source(options["source"], SourceSettings(fps=options["fps"]))
    if kind == "dronecam":
        server: Any = await _dronecam_server(source, options)
    else:
        server = BaselineServer(source, naive=kind == "naive", max_clients=options["max_clients"])
    await server.start()
    queue.put(("server", kind, server.url))
    try:
        while not stop.is_set() and time.monotonic() < options["deadline"]:
            await asyncio.sleep(0.1)
    finally:
        await server.stop()


async def _dronecam_server(source, options: dict[str, Any]):
    from ...server import ServerSettings, build_server

    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        max_clients=options["max_clients"],
        send_buffer_bytes=options["send_buffer"],
    )
    server = build_server(source, settings, log=lambda message: None)
    await server.feed.open()
    return server


class BaselineServer:
    """The fan-out people write with `websockets`: broadcast, or each send awaited in turn."""

    def __init__(self, source, naive: bool, max_clients: int) -> None:
        self.source = source
        self.naive = naive
        self.max_clients = max_clients
        self.clients: set = set()
        self.frames = 0
        self.started_s = time.monotonic()
        self._server: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return "ws://127.0.0.1:%d%s" % (port, protocol.WS_PATH)

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        await self.source.open()
        self._server = await serve(self._handler, "127.0.0.1", 0, backlog=1024)
        self._tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._heartbeat())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server.close()
        await self._server.wait_closed()
        await self.source.close()

    def fps(self) -> float:
        return self.frames / max(1e-3, time.monotonic() - self.started_s)

    async def _handler(self, ws) -> None:
        if len(self.clients) >= self.max_clients:
            await ws.send(protocol.error_message("server_full", "server full"))
            await ws.close(protocol.CLOSE_TRY_AGAIN_LATER, "server full")
            return
        await ws.send(protocol.welcome_message({"version": protocol.PROTOCOL_VERSION}))
        self.clients.add(ws)
        try:
            async for message in ws:
                await ws.send(self._reply(message))
        except ConnectionClosed:
            pass  # the bench's clients leave by dropping the connection
        finally:
            self.clients.discard(ws)

    def _reply(self, message) -> str:
        try:
            command, _ = protocol.parse_command(message if isinstance(message, str) else "")
        except ProtocolError as error:
            return error.reply
        if command == protocol.PING:
            return protocol.PONG
        if command == protocol.CLOCK:
            return protocol.clock_message(time.monotonic_ns() // 1000)
        if command == protocol.GET_STATS:
            return protocol.stats_message(len(self.clients), self.fps(), self.frames)
        return protocol.error_message("unsupported", "this baseline has no credit flow")

    async def _pump(self) -> None:
        from websockets import broadcast

        while True:
            jpeg = await self.source.read()
            self.frames += 1
            message = bytes(protocol.tag_jpeg(jpeg, self.frames, time.monotonic_ns() // 1000))
            if not self.naive:
                broadcast(self.clients, message)
                continue
            for ws in list(self.clients):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(message)

    async def _heartbeat(self) -> None:
        from websockets import broadcast

        while True:
            await asyncio.sleep(protocol.HEARTBEAT_INTERVAL_MS / 1000)
            text = protocol.heartbeat_message(self.fps(), len(self.clients))
            broadcast(self.clients, text)
