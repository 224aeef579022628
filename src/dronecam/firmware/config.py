"""Everything a user sets on the device, in one file (docs/firmware.md §Configuration)."""

from micropython import const

# WiFi access point (the original's defaults). Change AP_PASSWORD before flying.
AP_SSID = "ESP32-S3-Drone-Camera"
AP_PASSWORD = "drone12345"
DEFAULT_AP_PASSWORD = "drone12345"
AP_ADDRESS = "192.168.4.1"
AP_NETMASK = "255.255.255.0"

# Camera: a preset from boards.py, and the original's VGA, quality 12 (OV2640 scale), 2 buffers.
BOARD = "ESP32-S3-EYE"
FRAME_SIZE = "VGA"
JPEG_QUALITY = const(12)  # 0 best .. 63 worst, as in the original's ov2640.cpp
FRAME_BUFFERS = const(2)
XCLK_FREQ_HZ = const(20000000)

# Stream server (the original's StreamConfig).
PORT = const(80)
MAX_CLIENTS = const(5)
MAX_FRAME_SIZE = const(100000)
STREAM_TIMEOUT_MS = const(5000)
HEARTBEAT_INTERVAL_MS = const(1000)
HANDSHAKE_TIMEOUT_MS = const(5000)
MAX_CLIENT_MESSAGE_BYTES = const(4096)  # the contract's limit (docs/protocol.md §4)
MAX_CLIENT_MESSAGES_PER_S = const(200)  # frames of any kind from one client, as on the host
# Host runs only: the unix port's kernel buffers hold seconds of video, lwIP's (TCP_SND_BUF,
# about 5.7 KB on the ESP32) a fraction of a frame; a small SO_SNDBUF mimics the device.
SEND_BUFFER_BYTES = const(0)  # 0: leave the system default (always, on the device)
# Frames in flight: the newest, plus one per client still writing an older one.
FRAME_SLOTS = const(3)

# MAVLink telemetry from the flight controller (docs/mavlink.md): a UART wired to one of its
# TELEM ports (its TX to MAVLINK_RX_PIN, and GND). None: no flight controller, no telemetry.
# On the unix port, the stand-in machine.UART replays a recorded flight.
MAVLINK_UART = None  # e.g. 1 for UART1
MAVLINK_BAUD = const(57600)
MAVLINK_RX_PIN = const(44)  # the S3's U0RXD pin, free when the USB-serial console is used
MAVLINK_TX_PIN = const(43)  # the device only listens; wired or not
TELEMETRY_MAX_AGE_MS = const(3000)
