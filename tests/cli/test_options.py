"""Every mistake a user can make on the command line gets one clear line, never a traceback
(cli/options.py: the shared parser and bounded option types, and what each command checks).

Each case runs `dronecam` as a real child process and checks: exit status not 0, exactly one
line on stderr, no "Traceback", and the words that tell the user what to do.
"""

import argparse
import asyncio
import socket
import ssl

import pytest

from dronecam import cli
from dronecam.client import StreamClient
from support import host_server, seconds, start_dronecam
from support_hardening import self_signed_certificate

# `python -c` with an optional extra's module blocked, as if it were not installed.
WITHOUT = "import sys; sys.modules[%r] = None; from dronecam.cli import main; sys.exit(main(sys.argv[1:]))"


async def run(*args: str, python: tuple[str, ...] = ("-m", "dronecam")) -> tuple[int, str, str]:
    process = await start_dronecam(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, command=python
    )
    out, err = await asyncio.wait_for(process.communicate(), seconds(30))
    return process.returncode or 0, out.decode(), err.decode()


async def one_line(*args: str, python: tuple[str, ...] = ("-m", "dronecam")) -> str:
    """The one line a failed command prints on stderr."""
    code, _, err = await run(*args, python=python)
    assert code != 0, "dronecam %s succeeded" % " ".join(args)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("serve", "--port", "70000"), "--port: must be from 0 to 65535"),
        (("serve", "--size", "16384x16384"), "each side must be from 16 to 8192"),
        (("serve", "--size", "4096x4096"), "synthetic frames are at most 3840x2160"),
        (("serve", "--size", "big"), "--size: must look like 640x480"),
        (("serve", "--fps", "0"), "--fps: must be above 0"),
        (("serve", "--quality", "99"), "--quality: must be from 0 to 63"),
        (("serve", "--max-frame-bytes", "0"), "--max-frame-bytes: must be from 1024"),
        (("serve", "--stream-timeout-ms", "-5"), "--stream-timeout-ms: must be from 100"),
        (("serve", "--send-buffer", "-1"), "--send-buffer: must be from 4096"),
        (("serve", "--heartbeat-ms", "5"), "--heartbeat-ms: must be from 100 to 2000"),
        (("serve", "--source", "ws://127.0.0.1:70000/ws"), "port must be from 1 to 65535"),
        (("serve", "--source", "nonsense:"), "unknown source"),
        (("serve", "--source", "opencv:99"), "OpenCV cannot open camera 99"),
        (("serve", "--source", "file:{tmp}/none.mkv"), "does not exist"),
        (("serve", "--certfile", "{tmp}/none.pem"), "cannot load the TLS certificate"),
        (("snapshot", "ws://127.0.0.1:70000/ws", "{tmp}/x.jpg"), "port must be from 1 to 65535"),
        (("snapshot", "ftp://127.0.0.1/ws", "{tmp}/x.jpg"), "not a WebSocket URL"),
        (("snapshot", "ws://127.0.0.1:9/ws", "{tmp}/no/x.jpg"), "there is no folder {tmp}/no"),
        (("snapshot", "ws://127.0.0.1:9/ws", "{tmp}"), "it is a folder"),
        (("snapshot", "--timeout", "0", "ws://127.0.0.1:9/ws", "{tmp}/x.jpg"), "above 0"),
        (("record", "ws://127.0.0.1:9/ws", "{tmp}/no/x.mkv"), "there is no folder {tmp}/no"),
        (("record", "--frames", "0", "ws://127.0.0.1:9/ws", "{tmp}/x.mkv"), "at least 1"),
        (("record", "--duration", "-1", "ws://127.0.0.1:9/ws", "{tmp}/x.mkv"), "above 0"),
        (("record", "ws://127.0.0.1:9/ws", "{tmp}/x.gif"), "record to .mkv, .avi"),
        (("stats", "--window", "999"), "--window: must be from 0 to 64"),
        (("stats", "--duration", "-1"), "--duration: must be above 0"),
        (("stats", "ws://127.0.0.1:9/ws"), "cannot reach ws://127.0.0.1:9/ws"),
        (("bench", "-n", "-1"), "--clients: must be from 0"),
        (("bench", "--url", "ws://127.0.0.1:9/ws", "-t", "1"), "cannot reach ws://127.0.0.1:9/ws"),
        (("soak", "--url", "ws://127.0.0.1:9/ws", "--duration", "1"), "cannot reach"),
        (("soak", "--duration", "-1"), "--duration: must be above 0"),
        (("firmware", "run", "--port", "70000"), "--port: must be from 0 to 65535"),
        (("nonsense",), "invalid choice"),
        ((), "the following arguments are required: COMMAND"),
    ],
)
async def test_a_mistake_gets_one_line(tmp_path, args, says):
    line = await one_line(*(arg.format(tmp=tmp_path) for arg in args))
    assert says.format(tmp=tmp_path) in line


@pytest.mark.parametrize("command", ["soak", "bench"])
async def test_a_missing_extra_is_named(command):
    line = await one_line(
        command,
        "--duration" if command == "soak" else "-t",
        "1",
        python=(
            "-c",
            WITHOUT % "psutil",
        ),
    )
    assert line == "dronecam: %s needs psutil: pip install 'dronecam[bench]'" % command


async def test_recording_without_pyav_names_the_extra(tmp_path):
    line = await one_line(
        "record", "ws://127.0.0.1:9/ws", str(tmp_path / "x.mkv"), python=("-c", WITHOUT % "av")
    )
    assert line == "dronecam: recording needs av: pip install 'dronecam[av]'"


@pytest.mark.parametrize(
    "args",
    [
        ("snapshot", "ws://127.0.0.1:9/ws", "{file}"),
        ("record", "ws://127.0.0.1:9/ws", "{file}"),
        ("viewer", "--out", "{file}"),
        ("bench", "--json", "{file}"),
    ],
)
async def test_no_command_overwrites_a_file(tmp_path, args):
    mine = tmp_path / ("flight.mkv" if args[0] == "record" else "mine.txt")
    mine.write_bytes(b"a user's file")
    line = await one_line(*(arg.format(file=mine) for arg in args))
    assert line == "dronecam: %s exists; add --overwrite to replace it" % mine
    assert mine.read_bytes() == b"a user's file"


async def test_a_firmware_bundle_never_writes_over_one(tmp_path):
    code, _, err = await run("firmware", "bundle", str(tmp_path / "device"))
    assert code == 0, err
    main_py = tmp_path / "device" / "main.py"
    main_py.write_text("# my own main.py")
    line = await one_line("firmware", "bundle", str(tmp_path / "device"))
    assert "already holds" in line and line.endswith("add --overwrite to replace them")
    assert main_py.read_text() == "# my own main.py"
    code, _, err = await run("firmware", "bundle", str(tmp_path / "device"), "--overwrite")
    assert code == 0, err
    assert main_py.read_text() != "# my own main.py"


async def test_viewer_replaces_only_its_own_page(tmp_path):
    page = tmp_path / "dronecam-viewer.html"
    for _ in range(2):  # the second run finds the first run's page: that loses nothing
        code, _, err = await run("viewer", "--out", str(page))
        assert code == 0, err
    code, _, err = await run("viewer", "--out", str(page), "--overwrite")
    assert code == 0, err


async def test_snapshot_overwrites_only_when_asked(tmp_path):
    out = tmp_path / "frame.jpg"
    out.write_bytes(b"old")
    async with host_server() as server:
        code, _, err = await run("snapshot", server.url, str(out), "--overwrite")
    assert code == 0, err
    assert out.read_bytes()[:2] == b"\xff\xd8"


async def test_wrong_urls_say_what_to_type(tmp_path):
    out = str(tmp_path / "x.jpg")
    async with host_server() as server:
        line = await one_line("snapshot", server.url.replace("/ws", "/video"), out)
        assert line.endswith("answered 404 Not Found: the stream is at %s" % server.url)
        # A bare host, or host:port, is taken as the viewer page takes it: ws://HOST:PORT/ws.
        code, saved, err = await run("snapshot", server.url[len("ws://") : -len("/ws")], out)
        assert code == 0, err
        assert "saved" in saved


async def test_a_token_mistake_names_the_token(tmp_path):
    out = str(tmp_path / "x.jpg")
    async with host_server(token="s3cret") as server:
        missing = await one_line("snapshot", server.url, out)
        wrong = await one_line("snapshot", server.url + "?token=guess", out)
        code, _, err = await run("snapshot", server.url + "?token=s3cret", out)
    assert "needs an access token (HTTP 401): add ?token=TOKEN" in missing
    assert "refused the access token (HTTP 401): check ?token=" in wrong
    assert "guess" not in wrong
    assert code == 0, err


async def test_the_wrong_scheme_suggests_the_other(tmp_path):
    out = str(tmp_path / "x.jpg")
    certfile, keyfile = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    async with host_server() as plain, host_server(ssl_context=context) as tls:
        wss_to_plain = await one_line("snapshot", plain.url.replace("ws://", "wss://"), out)
        ws_to_tls = await one_line("snapshot", tls.url.replace("wss://", "ws://"), out)
        untrusted = await one_line("snapshot", tls.url, out)
    assert "()" not in wss_to_plain
    assert wss_to_plain.endswith("is it a plain server? try %s" % plain.url)
    assert ws_to_tls.endswith("TLS server: try %s" % tls.url)
    assert "not trusted" in untrusted and "SSL_CERT_FILE=" in untrusted


async def test_a_full_server_is_said_once(tmp_path):
    async with host_server(max_clients=1) as server, StreamClient(server.url) as first:
        frames = first.frames()
        await asyncio.wait_for(anext(frames), seconds(5))
        line = await one_line("snapshot", server.url, str(tmp_path / "x.jpg"))
    assert line == (
        "dronecam: server full: 1 clients connected, its limit; try again later or raise the "
        "server's --max-clients"
    )


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


def test_every_command_has_a_version(capsys):
    from importlib.metadata import version

    commands = [(), *_commands(cli.build_parser())]
    assert ("firmware", "run") in commands and ("record",) in commands
    for command in commands:
        with pytest.raises(SystemExit) as exit_status:
            cli.main([*command, "--version"])
        assert exit_status.value.code == 0
        assert capsys.readouterr().out == "dronecam %s\n" % version("dronecam")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--frames", "{tmp}/none"), "--frames {tmp}/none: no such folder"),
        (("--frames", "{tmp}"), "--frames {tmp}: no .jpg files in it"),
        (("--heapsize", "64k"), "--heapsize 64k is too small: the smallest heap that works"),
        (("--heapsize", "lots"), "--heapsize 'lots': give a size such as 640k or 2M"),
        (("--frames", "{frames}", "--heapsize", "700k"), "60 frames"),
        (("--port", "{busy}"), "port {busy} is in use"),
    ],
)
async def test_a_firmware_run_mistake_gets_one_line_before_starting(tmp_path, args, says):
    from dronecam.tools.firmware import write_frames

    frames = write_frames(tmp_path / "frames", 60)  # 780 KB: more than a 700k heap holds
    (tmp_path / "frames" / "README").write_text("not a frame")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        names = {"tmp": tmp_path / "empty", "frames": frames, "busy": busy.getsockname()[1]}
        (tmp_path / "empty").mkdir()
        line = await one_line("firmware", "run", *(arg.format(**names) for arg in args))
    assert says.format(**names) in line, line
