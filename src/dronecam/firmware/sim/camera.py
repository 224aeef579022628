"""Stand-in for micropython-camera-API's `camera` module on the unix port: replays JPEG files.

Same names, keyword arguments, checks and buffer lifetime as the real module: `capture()`
returns a memoryview of one of `fb_count` driver buffers, and handing it back (the next
capture or `free_buffer()`) scribbles over it, so code that keeps a captured frame past its
lifetime sends broken frames here as it would on the device. Frames come from the folder in
DRONECAM_FRAMES at DRONECAM_FPS (default 30); DRONECAM_CAMERA_STALL="N:MS" stops delivery
for MS ms after N captures, like a camera whose bus has hung.
"""

import array
import os
import time

_SIZES = {0: (96, 96), 1: (160, 120), 3: (176, 144), 4: (240, 176), 5: (240, 240),
          6: (320, 240), 8: (400, 296), 9: (480, 320), 10: (640, 480), 11: (800, 600),
          12: (1024, 768), 13: (1280, 720), 14: (1280, 1024), 15: (1600, 1200)}


class PixelFormat:
    RGB565 = 0
    YUV422 = 1
    YUV420 = 2
    GRAYSCALE = 3
    JPEG = 4
    RGB888 = 5
    RAW = 6
    RGB444 = 7
    RGB555 = 8


class FrameSize:
    R96X96 = 0
    QQVGA = 1
    R128x128 = 2
    QCIF = 3
    HQVGA = 4
    R240X240 = 5
    QVGA = 6
    R320X320 = 7
    CIF = 8
    HVGA = 9
    VGA = 10
    SVGA = 11
    XGA = 12
    HD = 13
    SXGA = 14
    UXGA = 15


class GrabMode:
    WHEN_EMPTY = 0
    LATEST = 1


class GainCeiling:
    X2 = 0
    X4 = 1
    X8 = 2
    X16 = 3
    X32 = 4
    X64 = 5
    X128 = 6


def Version():
    return "stand-in (replays %s)" % os.getenv("DRONECAM_FRAMES")


def _load_frames():
    folder = os.getenv("DRONECAM_FRAMES")
    if not folder:
        raise OSError(19)  # ENODEV: no camera on this host without frames to replay
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    except OSError:
        _give_up("DRONECAM_FRAMES=%s is not a folder" % folder)
    if not names:
        _give_up("no .jpg files in DRONECAM_FRAMES=%s" % folder)
    sizes = [os.stat(folder + "/" + n)[6] for n in names]
    try:
        store = bytearray(sum(sizes))
    except MemoryError:
        _give_up("%d frames (%d bytes) do not fit in the heap: use fewer frames or a larger "
                 "heap (-X heapsize)" % (len(names), sum(sizes)))
    offsets = []
    offset = 0
    for name, size in zip(names, sizes):
        with open(folder + "/" + name, "rb") as file:
            file.readinto(memoryview(store)[offset : offset + size])
        offsets.append((offset, size))
        offset += size
    return store, offsets


def _give_up(reason):
    # A host run set up wrongly, not a camera fault: the watchdog would retry it forever.
    import sys

    print("[camera stand-in] cannot start: %s" % reason, file=sys.stderr)
    sys.exit(2)


_frames = None


class Camera:
    def __init__(self, *, data_pins=None, pclk_pin=None, vsync_pin=None, href_pin=None,
                 sda_pin=-1, scl_pin=-1, xclk_pin=None, i2c=None, xclk_freq=20000000,
                 powerdown_pin=-1, reset_pin=-1, pixel_format=PixelFormat.RGB565,
                 frame_size=FrameSize.QQVGA, jpeg_quality=85, fb_count=2,
                 grab_mode=GrabMode.LATEST, init=True):
        if data_pins is None or pclk_pin is None or vsync_pin is None or href_pin is None \
                or xclk_pin is None:
            raise TypeError("'data_pins', 'pclk_pin', 'vsync_pin', 'href_pin', 'xclk_pin' required")
        if not isinstance(data_pins, (list, bytearray)):
            raise TypeError("data_pins must be a list or bytearray")
        if len(data_pins) != 8:
            raise ValueError("data_pins must have 8 elements")
        if i2c is None and (sda_pin == -1 or scl_pin == -1):
            raise ValueError("Either i2c object or sda_pin/scl_pin must be specified")
        if not 0 <= jpeg_quality <= 100:
            raise ValueError("jpeg quality must be in range 0-100")
        if xclk_freq > 40000000:
            raise ValueError("xclk frequency cannot be grather than 40MHz")
        if grab_mode not in (GrabMode.WHEN_EMPTY, GrabMode.LATEST):
            raise ValueError("Invalid grab_mode")
        if pixel_format > PixelFormat.RGB555:
            raise ValueError("Invalid pixel_format")
        self._pixel_format = pixel_format
        self._frame_size = frame_size
        self._quality = jpeg_quality
        self._fb_count = min(2, max(1, fb_count))
        self._grab_mode = grab_mode
        self._initialized = False
        self.init()
        if self.capture() is None:
            self.deinit()
            raise OSError("Failed to capture initial frame. Construct a new object with "
                          "appropriate configuration.")
        if init:
            self.free_buffer()
        else:
            self.deinit()

    def init(self):
        global _frames
        if self._initialized:
            return
        if self._pixel_format != PixelFormat.JPEG:
            raise OSError(22)  # the stand-in replays JPEG files only
        first = _frames is None
        if first:
            _frames = _load_frames()
        largest = max(size for _, size in _frames[1])
        try:
            self._buffers = [array.array("b", bytes(largest)) for _ in range(self._fb_count)]
        except MemoryError:
            if first:
                _give_up("%d driver buffers of %d bytes do not fit in the heap next to the "
                         "frames: use fewer or smaller frames, or a larger heap (-X heapsize)"
                         % (self._fb_count, largest))
            raise OSError(12)  # ENOMEM, as esp_camera_init reports it
        self._held = None
        self._index = 0
        self._captures = 0
        self._period_ms = int(1000 / float(os.getenv("DRONECAM_FPS") or 30))
        self._due_ms = time.ticks_ms()
        stall = os.getenv("DRONECAM_CAMERA_STALL")
        self._stall = [int(part) for part in stall.split(":")] if stall else None
        self._stalled_until = None
        self._initialized = True

    def deinit(self):
        self.free_buffer()
        self._initialized = False

    def _check(self):
        if not self._initialized:
            raise OSError(2)  # ENOENT, as the real module raises

    def _stalled(self):
        if self._stall and self._captures == self._stall[0] and self._stalled_until is None:
            self._stalled_until = time.ticks_add(time.ticks_ms(), self._stall[1])
        if self._stalled_until is not None:
            if time.ticks_diff(self._stalled_until, time.ticks_ms()) > 0:
                return True
            self._stall = None
            self._stalled_until = None
        return False

    def frame_available(self):
        self._check()
        return not self._stalled() and time.ticks_diff(time.ticks_ms(), self._due_ms) >= 0

    def capture(self):
        self._check()
        self.free_buffer()
        if self._stalled():
            return None  # esp_camera_fb_get() timed out
        wait_ms = time.ticks_diff(self._due_ms, time.ticks_ms())
        if wait_ms > 0:
            time.sleep_ms(wait_ms)  # the real capture blocks until the sensor delivers
        now = time.ticks_ms()
        self._due_ms = time.ticks_add(self._due_ms, self._period_ms)
        if time.ticks_diff(now, self._due_ms) > self._period_ms:
            self._due_ms = time.ticks_add(now, self._period_ms)  # no burst after a pause
        store, offsets = _frames
        offset, size = offsets[self._index % len(offsets)]
        self._index += 1
        self._captures += 1
        buffer = self._buffers[self._captures % self._fb_count]
        view = memoryview(buffer)
        view[:size] = memoryview(store)[offset : offset + size]
        self._held = buffer
        return view[:size]

    def free_buffer(self):
        held, self._held = self._held, None
        if held is not None:
            held[0] = 0  # the driver reuses the buffer: the old view no longer holds a JPEG
            held[1] = 0

    def get_pixel_width(self):
        self._check()
        return _SIZES.get(self._frame_size, (0, 0))[0]

    def get_pixel_height(self):
        self._check()
        return _SIZES.get(self._frame_size, (0, 0))[1]

    def get_quality(self):
        return self._quality

    def set_quality(self, value):
        self._quality = value

    def get_fb_count(self):
        return self._fb_count

    def get_grab_mode(self):
        return self._grab_mode

    def get_pixel_format(self):
        return self._pixel_format

    def get_frame_size(self):
        return self._frame_size

    def get_sensor_name(self):
        return "OV2640"
