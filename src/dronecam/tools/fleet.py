"""`make fleet`: a local NATS server, three synthetic cameras publishing on it, one edge of all.

Run with `python -m dronecam.tools.fleet`; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .natsd import NatsServer


def _serve(*arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dronecam", "serve", *arguments])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dronecam.tools.fleet", description=__doc__)
    parser.add_argument("--nats-port", type=int, default=4222, help="NATS port (default: 4222)")
    parser.add_argument("--port", type=int, default=8090, help="the edge's port (default: 8090)")
    parser.add_argument("--cameras", type=int, default=3, help="synthetic cameras (default: 3)")
    args = parser.parse_args(argv)
    store = tempfile.TemporaryDirectory(prefix="dronecam-fleet-")
    try:
        nats = NatsServer(port=args.nats_port, jetstream=True, store_dir=Path(store.name)).start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as error:
        print("dronecam fleet: cannot start nats-server: %s" % error, file=sys.stderr)
        return 1
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(1, args.cameras + 1):
            processes.append(
                _serve(
                    "--host", "127.0.0.1", "--port", str(args.port + number),
                    "--fps", "15", "--size", "320x240",
                    "--publish", nats.url, "--name", "cam%d" % number, "--replay", "60",
                )
            )  # fmt: skip
        edge = "nats://127.0.0.1:%d/*" % nats.port
        processes.append(
            _serve("--host", "127.0.0.1", "--port", str(args.port), "--source", edge, "--viewer")
        )
        time.sleep(2)
        print(
            "\n".join(
                [
                    "",
                    "dronecam fleet: NATS at %s, %d cameras, an edge of all of them."
                    % (nats.url, args.cameras),
                    "  viewer page (list, switch, grid): http://127.0.0.1:%d/" % args.port,
                    "  one camera:      ws://127.0.0.1:%d/ws?camera=cam2" % args.port,
                    "  the fleet:       dronecam fleet %s" % nats.url,
                    "  instant replay:  dronecam record %s/cam1 last.mkv --since 30 --duration 5"
                    % nats.url,
                    "  a snapshot:      dronecam snapshot %s/cam3 now.jpg" % nats.url,
                    "Ctrl-C stops it all.",
                ]
            ),
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("dronecam fleet: a server stopped; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        nats.stop()
        store.cleanup()


if __name__ == "__main__":
    sys.exit(main())
