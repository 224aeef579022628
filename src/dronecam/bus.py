"""What the NATS publisher, the NATS source and the fleet commands share (docs/nats.md).

Subjects per camera, the replay stream's name, which payloads are dronecam frames, and the
`nats://` URL with its credentials, which are kept out of every URL that is shown or logged.
nats-py is imported only by the code that connects (the `nats` extra).
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

from .core.protocol import check_jpeg, read_tag

PREFIX = "dronecam"
ALL_STATUS = PREFIX + ".*.status"
ALL_CAMERAS = "*"
CAMERA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_PORT = 4222
EXTRA_HINT = "NATS needs nats-py: pip install 'dronecam[nats]'"


class BusError(Exception):
    """A NATS URL, credential or camera name that cannot be used, worded for the user."""


def frames_subject(name: str) -> str:
    return "%s.%s.frames" % (PREFIX, name)


def status_subject(name: str) -> str:
    return "%s.%s.status" % (PREFIX, name)


def snapshot_subject(name: str) -> str:
    """Requests on it are answered with the camera's newest frame (no stream joined)."""
    return "%s.%s.snapshot" % (PREFIX, name)


def replay_stream(name: str) -> str:
    """The JetStream stream that keeps the camera's last seconds (`--replay`)."""
    return "DRONECAM_%s" % name


def camera_of(subject: str) -> str:
    """The camera name in `dronecam.NAME.frames` or `.status`."""
    return subject.split(".")[1]


def check_name(name: str) -> str:
    if not CAMERA_NAME.match(name):
        raise BusError(
            "camera name %r: use 1-64 letters, digits, - or _ (it is part of NATS subjects)" % name
        )
    return name


def is_dronecam_frame(payload: bytes, max_bytes: int) -> bool:
    """A tagged JPEG that may be served; anything else on a frames subject is foreign."""
    return read_tag(payload) is not None and check_jpeg(payload, max_bytes) is None


class NatsAddress:
    """A `nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT][,HOST:PORT...][/CAMERA]` URL, parsed.

    `tls://` (or a CA/certificate in the environment) means TLS. Credentials may also come from
    $NATS_USER/$NATS_PASSWORD, $NATS_TOKEN, $NATS_NKEY (an NKey seed file) or $NATS_CREDS (a
    .creds file); TLS files from $NATS_CA, $NATS_CERT and $NATS_KEY. `shown` is the URL without
    any of them.
    """

    def __init__(self, url: str, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme not in ("nats", "tls") or not parts.netloc:
            raise BusError("not a NATS URL: use nats://HOST:PORT or tls://HOST:PORT (docs/nats.md)")
        self.scheme = parts.scheme
        credentials, _, hosts = parts.netloc.rpartition("@")
        self.hosts: list[str] = []
        for host in hosts.split(","):
            name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
            if not colon:
                name, port = host, str(DEFAULT_PORT)
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise BusError("bad NATS server address %r: use HOST:PORT" % host)
            self.hosts.append("%s:%s" % (name, port))
        self.camera = parts.path.strip("/") or None
        if self.camera is not None and self.camera != ALL_CAMERAS:
            check_name(self.camera)
        user, colon, password = credentials.partition(":")
        self.user = unquote(user) if colon else env.get("NATS_USER")
        self.password = unquote(password) if colon else env.get("NATS_PASSWORD")
        self.token = unquote(user) if credentials and not colon else env.get("NATS_TOKEN")
        if credentials and not colon:
            self.user = self.password = None
        self.creds_file = env.get("NATS_CREDS")
        self.nkey_file = env.get("NATS_NKEY")
        self.ca_file = env.get("NATS_CA")
        self.cert_file = env.get("NATS_CERT")
        self.key_file = env.get("NATS_KEY")
        self.tls = self.scheme == "tls" or bool(self.ca_file or self.cert_file)

    @property
    def shown(self) -> str:
        """The URL for logs and messages: no user, password or token."""
        return "%s://%s%s" % (
            self.scheme,
            ",".join(self.hosts),
            "/" + self.camera if self.camera else "",
        )

    @property
    def server(self) -> str:
        """The URL without the camera: nats://HOST:PORT (still no credentials)."""
        return "%s://%s" % (self.scheme, ",".join(self.hosts))

    def with_camera(self, camera: str) -> NatsAddress:
        copy = NatsAddress.__new__(NatsAddress)
        copy.__dict__.update(self.__dict__)
        copy.camera = check_name(camera)
        return copy

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect`: servers without credentials, then those apart.

        Raises:
            BusError: a TLS file that cannot be loaded.
        """
        servers = ["%s://%s" % (self.scheme, host) for host in self.hosts]
        options: dict[str, Any] = {"servers": servers}
        if self.user is not None:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.token:
            options["token"] = self.token
        if self.creds_file:
            options["user_credentials"] = self.creds_file
        if self.nkey_file:
            options["nkeys_seed"] = self.nkey_file
        try:
            context = self.ssl_context()
        except (OSError, ssl.SSLError) as error:
            raise BusError("cannot load the NATS TLS files: %s" % error) from None
        if context is not None:
            options["tls"] = context
            options["tls_hostname"] = self.hosts[0].rpartition(":")[0]
        return options


def import_nats():
    """The nats-py package.

    Raises:
        BusError: the `nats` extra is not installed.
    """
    try:
        import nats
    except ImportError:
        raise BusError(EXTRA_HINT) from None
    return nats


def describe_error(error: BaseException) -> str:
    """An exception from nats-py as a few words (they may be empty or repeat the class)."""
    text = str(error).strip()
    if text.startswith("nats: "):
        text = text[len("nats: ") :]
    return text or type(error).__name__


async def connect(address: NatsAddress, name: str, timeout_s: float = 3, **options):
    """A nats-py connection for a command (fleet, snapshot, record): one try, bounded.

    Raises:
        BusError: NATS unreachable, credentials refused, or the extra missing.
    """
    import asyncio

    nats = import_nats()
    last: list[BaseException] = []

    async def on_error(error: Exception) -> None:
        last.append(error)

    try:
        return await asyncio.wait_for(
            nats.connect(
                name=name,
                allow_reconnect=False,
                connect_timeout=max(1, int(timeout_s)),
                error_cb=on_error,
                **address.connect_options(),
                **options,
            ),
            timeout_s,
        )
    except (TimeoutError, Exception) as error:
        reason = last[-1] if last else error
        raise BusError(
            "cannot reach NATS at %s (%s)" % (address.server, describe_error(reason))
        ) from None


class Fleet:
    """The cameras heard on `dronecam.*.status`; each is forgotten after its TTL without one.

    A publisher that stops says so (camera "stopped") and leaves at once; one that dies leaves
    when its `ttl_s` (three heartbeats) has passed.
    """

    def __init__(self, clock=None) -> None:
        import time

        self.clock = clock or time.monotonic
        self._cameras: dict[str, tuple[dict, float]] = {}
        self.foreign = 0

    def heard(self, subject: str, payload: bytes) -> None:
        import json

        try:
            status = json.loads(payload)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            self.foreign += 1
            return
        name = camera_of(subject)
        if status.get("camera") == "stopped":
            self._cameras.pop(name, None)
        else:
            self._cameras[name] = (status, self.clock())

    def live(self) -> list[tuple[str, dict, float]]:
        """(name, status, seconds since heard) of every live camera, by name."""
        now = self.clock()
        for name, (status, heard_s) in list(self._cameras.items()):
            if now - heard_s > float(status.get("ttl_s", 3)):
                del self._cameras[name]
        return [
            (name, status, now - heard_s)
            for name, (status, heard_s) in sorted(self._cameras.items())
        ]

    async def watch(self, client, on_change=None):
        """Subscribe `client` to every camera's status; `on_change()` after each one."""

        async def on_status(message) -> None:
            self.heard(message.subject, message.data)
            if on_change is not None:
                on_change()

        return await client.subscribe(ALL_STATUS, cb=on_status)


async def snapshot(address: NatsAddress, timeout_s: float = 5) -> bytes:
    """The newest frame of `address.camera`, asked of its publisher (no stream joined).

    Raises:
        BusError: NATS unreachable, no such camera, or no frame yet.
    """
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    camera = one_camera(address)
    client = await connect(address, "dronecam-snapshot", timeout_s)
    try:
        try:
            reply = await client.request(snapshot_subject(camera), b"", timeout=timeout_s)
        except NoRespondersError:
            raise BusError(
                "no camera %r on %s: nothing publishes it (dronecam fleet %s lists them)"
                % (camera, address.server, address.server)
            ) from None
        except NatsTimeout:
            raise BusError("camera %r did not answer within %g s" % (camera, timeout_s)) from None
    finally:
        await client.close()
    if not reply.data:
        raise BusError("camera %r has no frame yet" % camera)
    return bytes(reply.data)


async def history(client, address: NatsAddress, since_s: float, pending_frames: int = 512):
    """A subscription to `address.camera`'s frames from `since_s` ago, then live (JetStream).

    Raises:
        BusError: the camera has no replay stream (no --replay, or NATS without JetStream).
    """
    import datetime

    from nats.errors import NoRespondersError
    from nats.js.api import ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError, ServiceUnavailableError

    camera = one_camera(address)
    js = client.jetstream(timeout=3)
    try:
        await js.stream_info(replay_stream(camera))
    except (NotFoundError, NoRespondersError, ServiceUnavailableError):
        raise BusError(
            "no replay of camera %r on %s: its publisher runs without --replay, or the NATS "
            "server without JetStream (-js); record without --since to record live"
            % (camera, address.server)
        ) from None
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=since_s)
    return await js.subscribe(
        frames_subject(camera),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start),
        pending_msgs_limit=pending_frames,
        pending_bytes_limit=64 * 1024 * 1024,
    )


def one_camera(address: NatsAddress) -> str:
    if address.camera in (None, ALL_CAMERAS):
        raise BusError("name one camera: %s/NAME" % address.server)
    return address.camera  # type: ignore[return-value]
