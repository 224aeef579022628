"""Access control: Origin allow-list, access token, TLS; off by default, one option away."""

from __future__ import annotations

import asyncio
import signal
import ssl
from urllib.parse import quote

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from dronecam.cli import main
from support import ListSource, host_server, seconds, start_dronecam, synthetic_jpegs
from support_hardening import RawClient, self_signed_certificate

JPEGS = synthetic_jpegs(5, 320, 240)
ALLOWED = "https://ops.example.com"
TOKEN = "s3cret-t0ken/with+odd=chars"


async def first_frame(url: str, **options) -> bytes:
    async with websockets.connect(url, **options) as ws:
        while True:
            message = await asyncio.wait_for(ws.recv(), seconds(5))
            if isinstance(message, bytes):
                return message


async def refused_status(url: str, **options) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await first_frame(url, **options)
    return refused.value.response.status_code


async def test_everything_is_open_by_default():
    async with host_server(ListSource(JPEGS)) as server:
        assert server.settings.access_summary() == "no TLS, no token, any origin"
        assert await first_frame(server.url, origin="https://anything.example")
        assert await first_frame(server.url + "?token=whatever")


async def test_cross_site_origin_is_refused_allowed_and_no_origin_work():
    async with host_server(ListSource(JPEGS), origins=[ALLOWED]) as server:
        assert await refused_status(server.url, origin="https://evil.example") == 403
        assert await refused_status(server.url, origin="null") == 403
        assert await first_frame(server.url, origin=ALLOWED)
        assert await first_frame(server.url)  # no Origin header: not a browser


async def test_wrong_or_missing_token_is_refused_right_token_works():
    async with host_server(ListSource(JPEGS), token=TOKEN) as server:
        assert await refused_status(server.url) == 401
        assert await refused_status(server.url + "?token=") == 401
        assert await refused_status(server.url + "?token=s3cret") == 401
        assert await refused_status(server.url + "?token=" + TOKEN + "x") == 401
        assert await first_frame(server.url + "?token=" + quote(TOKEN, safe=""))


async def test_refused_clients_leave_nothing_behind():
    async with host_server(ListSource(JPEGS), token=TOKEN, origins=[ALLOWED]) as server:
        for _ in range(20):
            client = await RawClient.open(server.url)
            status, head = await client.handshake(("Origin: " + ALLOWED,))
            assert status == 401 and TOKEN.encode() not in head
            await client.wait_closed(seconds(5))
            client.close()
        await asyncio.sleep(0.1)
        assert not server.connections and not server.hub.subscriptions


async def test_wss_works_with_a_client_that_trusts_the_certificate(tmp_path):
    certfile, keyfile = self_signed_certificate(str(tmp_path))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certfile, keyfile)
    async with host_server(ListSource(JPEGS), ssl_context=server_context) as server:
        assert server.url.startswith("wss://")
        trusting = ssl.create_default_context(cafile=certfile)
        assert await first_frame(server.url, ssl=trusting)
        with pytest.raises(ssl.SSLCertVerificationError):
            await first_frame(server.url, ssl=ssl.create_default_context())
        plain = server.url.replace("wss://", "ws://")
        with pytest.raises((websockets.InvalidHandshake, ConnectionError, EOFError)):
            await first_frame(plain, open_timeout=seconds(5))
        assert await first_frame(server.url, ssl=trusting)


def test_serve_rejects_unusable_access_options(tmp_path, capsys):
    assert main(["serve", "--keyfile", "key.pem"]) == 2
    assert "--keyfile needs --certfile" in capsys.readouterr().err
    missing = str(tmp_path / "missing.pem")
    assert main(["serve", "--certfile", missing]) == 2
    assert "cannot load the TLS certificate" in capsys.readouterr().err
    assert main(["serve", "--token", ""]) == 2


async def test_serve_command_with_token_origin_and_tls(tmp_path):
    """`dronecam serve` wires every option; the token comes from the environment, never logged."""
    certfile, keyfile = self_signed_certificate(str(tmp_path))
    process = await start_dronecam(
        "serve",
        *("--host", "127.0.0.1", "--port", "0", "--size", "320x240", "-v"),
        *("--allow-origin", ALLOWED, "--allow-origin", "https://second.example"),
        *("--certfile", certfile, "--keyfile", keyfile),
        env={"DRONECAM_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = []
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), seconds(20))).decode()
            assert line, "".join(output)
            output.append(line)
            if "WebSocket endpoint:" in line:
                url = line.split("WebSocket endpoint:")[1].strip()
                break
        assert url.startswith("wss://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=certfile)
        with_token = url + "?token=" + quote(TOKEN, safe="")
        assert await first_frame(with_token, ssl=trusting, origin=ALLOWED)
        assert await first_frame(with_token, ssl=trusting)
        assert await refused_status(url + "?token=nope", ssl=trusting) == 401
        assert await refused_status(with_token, ssl=trusting, origin="https://evil.example") == 403
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), seconds(20))
        output.append(rest.decode())
    log = "".join(output)
    assert "Access: TLS, token required, origins %s, https://second.example" % ALLOWED in log
    assert "refused" in log and "access token" in log
    assert TOKEN not in log and quote(TOKEN, safe="") not in log


async def test_tls_handshake_is_bounded_by_the_handshake_timeout(tmp_path):
    """A client that opens TCP to a wss:// server and never starts TLS is dropped in time."""
    certfile, keyfile = self_signed_certificate(str(tmp_path))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certfile, keyfile)
    async with host_server(
        ListSource(JPEGS), ssl_context=server_context, handshake_timeout_ms=500
    ) as server:
        silent = await RawClient.open(server.url.replace("wss://", "ws://"))
        garbage = await RawClient.open(server.url.replace("wss://", "ws://"))
        garbage.send(b"GET /ws HTTP/1.1\r\n\r\n")
        for client in (silent, garbage):
            assert await client.wait_closed(seconds(5)) < seconds(3)
            client.close()
        trusting = ssl.create_default_context(cafile=certfile)
        assert await first_frame(server.url, ssl=trusting)
