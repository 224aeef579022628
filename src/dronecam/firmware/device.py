"""The device: WiFi access point, then the camera, then the stream server (main.py starts it)."""

import asyncio
import gc
import sys

import config
from boards import pins
from frame_ring import FrameRing
from ov2640 import OV2640
from stream_server import StreamServer, log

from dronecam.core.compat import ticks_ms
from dronecam.core.hub import Hub
from dronecam.core.mavlink import MavlinkReader
from dronecam.core.source import Feed, SourceError
from dronecam.core.telemetry import TelemetryState

PASSWORD_WARNING_INTERVAL_MS = 60000
UART_POLL_MS = 10


def open_telemetry():
    """(state, reader task) for the flight controller's UART, or (None, None) without one."""
    if config.MAVLINK_UART is None:
        return None, None
    from machine import UART

    uart = UART(config.MAVLINK_UART, baudrate=config.MAVLINK_BAUD, rx=config.MAVLINK_RX_PIN,
                tx=config.MAVLINK_TX_PIN, rxbuf=1024, timeout=0)
    state = TelemetryState(max_age_ms=config.TELEMETRY_MAX_AGE_MS)
    reader = MavlinkReader(lambda msgid, sysid, compid, payload:
                           state.apply(msgid, sysid, compid, payload, ticks_ms()))
    print("[MAVLink] listening on UART%d at %d baud" % (config.MAVLINK_UART, config.MAVLINK_BAUD))
    return state, asyncio.create_task(read_uart(uart, reader))


async def read_uart(uart, reader):
    """Feed the UART's bytes to the MAVLink reader; a buffer-full at a time, no allocation."""
    chunk = bytearray(256)
    view = memoryview(chunk)
    while True:
        try:
            count = uart.readinto(chunk)
            while count:  # drain what has come, yielding between buffer-fulls
                reader.receive(view[:count])
                await asyncio.sleep_ms(0)
                count = uart.readinto(chunk)
        except MemoryError:  # telemetry waits for the next buffer-full; it must not end
            gc.collect()
        await asyncio.sleep_ms(UART_POLL_MS)


def warn_default_password():
    if config.AP_PASSWORD == config.DEFAULT_AP_PASSWORD:
        line = "!" * 72
        print(line)
        print("!!! WARNING: the WiFi password is the published default %r." % config.AP_PASSWORD)
        print("!!! Anyone in range can join and watch. Set AP_PASSWORD in config.py.")
        print(line)


def start_access_point():
    import network

    if len(config.AP_PASSWORD) < 8:
        raise ValueError("AP_PASSWORD in config.py must have at least 8 characters (WPA2)")
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(essid=config.AP_SSID, password=config.AP_PASSWORD,
              authmode=network.AUTH_WPA_WPA2_PSK, max_clients=config.MAX_CLIENTS + 2)
    ap.ifconfig((config.AP_ADDRESS, config.AP_NETMASK, config.AP_ADDRESS, config.AP_ADDRESS))
    print("[WiFi] access point %r up at %s" % (config.AP_SSID, ap.ifconfig()[0]))
    warn_default_password()
    return ap


class StartError(Exception):
    """The device cannot start as configured; the message says what to change."""


async def run(host, port):
    start_access_point()
    source = OV2640(pins(config.BOARD), config.FRAME_SIZE, config.JPEG_QUALITY,
                    config.FRAME_BUFFERS, config.XCLK_FREQ_HZ)
    try:
        ring = FrameRing(config.FRAME_SLOTS, config.MAX_FRAME_SIZE)
    except MemoryError:
        raise StartError("no room for %d frame slots of %d bytes in a heap of %d bytes: lower "
                         "FRAME_SLOTS or MAX_FRAME_SIZE in config.py" % (
                             config.FRAME_SLOTS, config.MAX_FRAME_SIZE,
                             gc.mem_free() + gc.mem_alloc()))
    telemetry, _ = open_telemetry()
    # Each frame carries the newest state, aged to its framing (no allocation per frame).
    annotate = None if telemetry is None else lambda capture_us: telemetry.latest_segment(ticks_ms())
    feed = Feed(source, Hub(ring.build, annotate))
    feed.settings.max_frame_bytes = config.MAX_FRAME_SIZE
    feed.settings.frame_limit_name = "MAX_FRAME_SIZE in config.py"
    try:
        await feed.open()
        print("[Camera] %s %dx%d, quality %d (%d %%)" % (
            config.BOARD, source.width, source.height, config.JPEG_QUALITY, source.quality_percent))
    except SourceError as error:
        print("[Camera] %s; the watchdog keeps retrying" % error)
    server = StreamServer(feed, config.MAX_CLIENTS, config.STREAM_TIMEOUT_MS,
                          config.HEARTBEAT_INTERVAL_MS, config.HANDSHAKE_TIMEOUT_MS,
                          config.MAX_CLIENT_MESSAGE_BYTES, ring, config.SEND_BUFFER_BYTES,
                          config.MAX_CLIENT_MESSAGES_PER_S)
    try:
        await server.start(host, port)
    except OSError as error:
        raise StartError("cannot listen on %s:%d (%s)" % (host, port, error))
    gc.collect()
    while True:
        await asyncio.sleep_ms(PASSWORD_WARNING_INTERVAL_MS)
        try:
            warn_default_password()
        except MemoryError:  # this task's end would end asyncio.run: the device with it
            gc.collect()


def main(host="0.0.0.0", port=None, **overrides):
    """Start everything; `overrides` replace config.py values by name (host runs and tests).

    A device that cannot start says why in one line (on stderr) and exits with status 1.
    """
    for name in overrides:
        if not hasattr(config, name.upper()):
            raise ValueError("config.py has no setting %s" % name.upper())
        setattr(config, name.upper(), overrides[name])
    try:
        asyncio.run(run(host, config.PORT if port is None else port))
    except KeyboardInterrupt:
        log("stopped")
    except StartError as error:
        _give_up(str(error))
    except MemoryError:
        _give_up("out of memory while starting, in a heap of %d bytes: lower MAX_FRAME_SIZE "
                 "or FRAME_SLOTS in config.py" % (gc.mem_free() + gc.mem_alloc()))


def _give_up(reason):
    print("[Device] cannot start: %s" % reason, file=sys.stderr)
    sys.exit(1)
