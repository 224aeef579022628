"""Camera pin presets for ESP32-S3 boards, as keyword arguments of camera.Camera."""

# Data pins are D0..D7 (the driver's Y2..Y9). Sources: the boards' schematics, and the
# camera_pins.h of espressif/esp32-camera and cnadler86/micropython-camera-API.
_S3_EYE = {
    "data_pins": [11, 9, 8, 10, 12, 18, 17, 16],
    "vsync_pin": 6,
    "href_pin": 7,
    "sda_pin": 4,
    "scl_pin": 5,
    "pclk_pin": 13,
    "xclk_pin": 15,
    "powerdown_pin": -1,
    "reset_pin": -1,
}

BOARDS = {
    "ESP32-S3-EYE": _S3_EYE,
    # The Freenove ESP32-S3 WROOM CAM wires the camera like the ESP32-S3-EYE.
    "FREENOVE-ESP32-S3-WROOM-CAM": _S3_EYE,
    "XIAO-ESP32S3-SENSE": {
        "data_pins": [15, 17, 18, 16, 14, 12, 11, 48],
        "vsync_pin": 38,
        "href_pin": 47,
        "sda_pin": 40,
        "scl_pin": 39,
        "pclk_pin": 13,
        "xclk_pin": 10,
        "powerdown_pin": -1,
        "reset_pin": -1,
    },
}


def pins(board: str) -> dict:
    """The camera pins of a preset; ValueError names the presets that exist."""
    if board not in BOARDS:
        raise ValueError("unknown BOARD %r in config.py; use one of %s" % (board, sorted(BOARDS)))
    return BOARDS[board]
