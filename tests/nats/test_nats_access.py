"""NATS access: user/password, token, TLS, per-camera permissions; secrets never in a log."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dronecam.client import StreamClient
from dronecam.tools.natsd import NatsServer, free_port
from support import seconds
from support_hardening import self_signed_certificate
from support_nats import edge, frame_rate, next_frame, next_heartbeat, origin

DOCS = Path(__file__).parent.parent.parent / "docs" / "nats.md"
SECRET = "s3cr3t-do-not-log"


def _serve(*arguments: str, env: dict | None = None) -> tuple[subprocess.Popen[str], str]:
    """`dronecam serve -v ...` in its own process, its log kept: (process, ws URL)."""
    port = free_port()
    command = [sys.executable, "-m", "dronecam", "serve", "-v", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--heartbeat-ms", "200", *arguments]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return process, "ws://127.0.0.1:%d/ws" % port


async def _connect(url: str) -> StreamClient:
    for _ in range(100):
        try:
            return await StreamClient(url, reconnect=False).__aenter__()
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("no server at %s" % url)


def _log_of(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


AUTHS = {
    "user and password in the URL": (
        "authorization { user: cam, password: %s }" % SECRET,
        "nats://cam:%s@127.0.0.1:{port}" % SECRET,
        {},
    ),
    "user and password in the environment": (
        "authorization { user: cam, password: %s }" % SECRET,
        "nats://127.0.0.1:{port}",
        {"NATS_USER": "cam", "NATS_PASSWORD": SECRET},
    ),
    "token in the URL": ("authorization { token: %s }" % SECRET, "nats://%s@127.0.0.1:{port}" % SECRET, {}),
    "token in the environment": (
        "authorization { token: %s }" % SECRET,
        "nats://127.0.0.1:{port}",
        {"NATS_TOKEN": SECRET},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", AUTHS)
async def test_credentials_work_and_never_reach_a_log(case):
    config, url_form, env = AUTHS[case]
    with_nats = NatsServer(config=config).start()
    try:
        url = url_form.format(port=with_nats.port)
        camera, _ = _serve("--publish", url, "--name", "cam1", env=env)
        relay, relay_url = _serve("--source", url + "/cam1", env=env)
        wrong, _ = _serve(
            "--publish", "nats://cam:wrong-%s@127.0.0.1:%d" % (SECRET, with_nats.port),
            "--name", "cam2",
        )  # fmt: skip
        try:
            client = await _connect(relay_url)
            try:
                await next_frame(client, timeout_s=10)
                assert await frame_rate(client, seconds(1)) >= 20
            finally:
                await client.close()
        finally:
            logs = [_log_of(process) for process in (camera, relay, wrong)]
    finally:
        with_nats.stop()
    for log in logs:
        assert SECRET not in log
        assert "Traceback" not in log
    assert (
        "[NATS] publishing dronecam.cam1.frames on nats://127.0.0.1:%d" % with_nats.port in logs[0]
    )
    assert re.search(r"\[NATS\] cannot reach nats://127\.0\.0\.1:\d+ \(.*[Aa]uthorization", logs[2])


async def test_tls_from_the_environment_at_the_camera_rate(tmp_path, monkeypatch):
    certfile, keyfile = self_signed_certificate(str(tmp_path))
    config = 'tls { cert_file: "%s", key_file: "%s" }' % (certfile, keyfile)
    monkeypatch.setenv("NATS_CA", certfile)
    secured = NatsServer(config=config).start()
    try:
        url = "tls://127.0.0.1:%d" % secured.port
        async with (
            origin(url) as camera,
            edge(url + "/cam1") as relay,
            StreamClient(relay.url) as client,
        ):
            await next_frame(client)
            assert await frame_rate(client, seconds(2)) >= 25
            assert camera.status.shared_fields()["nats"] == "connected"
    finally:
        secured.stop()


def _permissions_config() -> str:
    return re.search(r"```conf\n(.*?)```", DOCS.read_text(), re.S).group(1)


async def test_the_documented_permissions_let_each_camera_publish_only_its_own_subjects():
    import nats

    locked = NatsServer(config=_permissions_config()).start()
    try:
        cam1 = "nats://cam1:cam1-secret@127.0.0.1:%d" % locked.port
        viewer = "nats://viewer:viewer-secret@127.0.0.1:%d" % locked.port
        async with (
            origin(cam1, name="cam1"),
            origin(cam1, name="cam2"),  # cam1's credentials, another camera's subjects
            edge(viewer + "/cam1") as good,
            edge(viewer + "/cam2") as spoofed,
            StreamClient(good.url) as client,
            StreamClient(spoofed.url) as spoofed_client,
        ):
            await next_frame(client)
            with pytest.raises(TimeoutError):
                await next_frame(spoofed_client, timeout_s=1)
            intruder = await nats.connect(viewer)
            try:
                await intruder.publish("dronecam.cam1.frames", b"\xff\xd8 not from cam1")
                await intruder.flush()
                await asyncio.sleep(0.3)
            finally:
                await intruder.close()
            assert good.feed.source.foreign == 0  # the server refused it: nothing came through
    finally:
        locked.stop()


async def test_an_nkey_seed_from_the_environment_works_and_is_never_logged(tmp_path):
    import nacl.signing
    import nkeys

    seed = nkeys.encode_seed(nacl.signing.SigningKey.generate().encode(), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "cam1.nk"
    seed_file.write_bytes(seed)
    with_nats = NatsServer(config="authorization { users: [ { nkey: %s } ] }" % public).start()
    try:
        url = "nats://127.0.0.1:%d" % with_nats.port
        env = {"NATS_NKEY": str(seed_file)}
        camera, _ = _serve("--publish", url, "--name", "cam1", env=env)
        relay, relay_url = _serve("--source", url + "/cam1", env=env)
        refused, refused_url = _serve("--source", url + "/cam1")  # no key: refused
        try:
            client = await _connect(relay_url)
            try:
                await next_frame(client, timeout_s=10)
            finally:
                await client.close()
            outsider = await _connect(refused_url)
            try:
                # NATS answers -ERR 'Authorization Violation' and closes; a try may read the
                # reset before the answer, the next one says it.
                errors = []
                for _ in range(8):
                    beat = await next_heartbeat(outsider, camera="waiting")
                    errors.append(beat["camera_error"])
                    if "uthorization" in errors[-1]:
                        break
                assert "uthorization" in errors[-1], errors
            finally:
                await outsider.close()
        finally:
            logs = [_log_of(process) for process in (camera, relay, refused)]
    finally:
        with_nats.stop()
    for log in logs:
        assert seed.decode() not in log and "Traceback" not in log
