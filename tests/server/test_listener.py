"""server/listener.py: the start-up log, and serving on when out of file descriptors."""

import asyncio
import logging
import os
import resource
import signal
import sys

import websockets

from dronecam.tools.wire import handshake_request
from support import host_server, seconds
from support_hardening import MIN_FPS, RawClient, Watcher


async def test_start_up_log_names_the_endpoint(caplog):
    caplog.set_level(logging.INFO, logger="dronecam.server")
    async with host_server() as server:
        pass
    lines = [record.getMessage() for record in caplog.records]
    assert "[VideoStreamServer] WebSocket-only video stream server started successfully!" in lines
    assert "[VideoStreamServer] WebSocket endpoint: %s" % server.url in lines


async def test_out_of_descriptors_is_logged_once_and_the_server_keeps_serving():
    """`dronecam serve` with 64 descriptors and 120 refused clients that never read: the
    log stays short, the viewer keeps its rate, and a new client gets in once a slot frees."""

    def few_descriptors() -> None:  # in the child, before exec: soft and hard limit alike
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "dronecam", "serve", "--host", "127.0.0.1", "--port", "0"),
        *("--size", "320x240", "--max-clients", "1", "--heartbeat-ms", "100"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=few_descriptors,
    )
    assert child.stdout is not None
    log = []
    flood = []
    try:
        while True:
            line = (await asyncio.wait_for(child.stdout.readline(), seconds(20))).decode()
            assert line, "".join(log)
            log.append(line)
            if "WebSocket endpoint:" in line:
                url = line.split("WebSocket endpoint:")[1].strip()
                break
        logged = asyncio.create_task(collect(child.stdout, log))
        start_bytes = sum(map(len, log))
        async with Watcher(url) as watcher:
            for _ in range(120):
                client = await RawClient.open(url)
                client.send(handshake_request(url)[0])
                client.stop_reading()
                flood.append(client)
            fps = await watcher.fps(seconds(4))
        # The watcher's slot is free: a newcomer gets in past the refused ones.
        async with websockets.connect(url, open_timeout=seconds(15)) as ws:
            welcome = await asyncio.wait_for(ws.recv(), seconds(5))
        flood_bytes = sum(map(len, log)) - start_bytes
    finally:
        for client in flood:
            client.close()
        child.send_signal(signal.SIGINT)
        await asyncio.wait_for(child.wait(), seconds(20))
    await asyncio.wait_for(logged, seconds(5))
    text = "".join(log)
    assert '"welcome"' in welcome
    assert "cannot accept connections" in text, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    # A line per refused client at most, never a traceback per failed accept().
    assert flood_bytes < 120 * 300, flood_bytes
    assert fps >= MIN_FPS, fps


async def collect(stream: asyncio.StreamReader, lines: list) -> None:
    while line := await stream.readline():
        lines.append(line.decode())
