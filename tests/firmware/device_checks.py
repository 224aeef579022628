"""Plain-assert checks of the firmware's modules under MicroPython, with the stand-in camera."""

import asyncio
import gc

from boards import BOARDS, pins
from frame_ring import FrameRing
from ov2640 import OV2640

from dronecam.core.hub import Hub
from dronecam.core.protocol import MAX_FRAME_SIZE, read_tag


def check_presets_reach_the_camera_module():
    assert sorted(BOARDS) == ["ESP32-S3-EYE", "FREENOVE-ESP32-S3-WROOM-CAM", "XIAO-ESP32S3-SENSE"]
    for board in BOARDS:
        assert len(pins(board)["data_pins"]) == 8
        source = OV2640(pins(board))
        asyncio.run(source.open())
        assert (source.width, source.height) == (640, 480)
        assert source.camera.get_quality() == 81  # OV2640 quality 12, in the module's percent
        assert 63 - source.camera.get_quality() * 63 // 100 == 12
        asyncio.run(source.close())
    try:
        pins("ESP32-CAM")
    except ValueError as error:
        assert "XIAO-ESP32S3-SENSE" in str(error)
    else:
        raise AssertionError("an unknown board must be refused")


def check_capture_lifetime_and_ring():
    source = OV2640(pins("ESP32-S3-EYE"))
    asyncio.run(source.open())
    ring = FrameRing(3, MAX_FRAME_SIZE)
    hub = Hub(ring.build)
    first = asyncio.run(source.read())
    frame = hub.publish(first, 1000)
    asyncio.run(source.read())
    assert first[0] != -1  # the stand-in, like the driver, reused the captured buffer
    assert bytes(frame.jpeg()[0:2]) == b"\xff\xd8" and read_tag(frame.jpeg()) == (1, 1000)
    # A slot pinned by a client writing it is never overwritten; with all pinned, skip.
    for slot in ring.frames:
        slot.pins = 1
    assert ring.build(asyncio.run(source.read()), 2, 2000) is None and ring.skipped == 1
    assert read_tag(frame.jpeg()) == (1, 1000)
    ring.frames[1].pins = 0
    assert ring.build(asyncio.run(source.read()), 2, 2000) is ring.frames[1]
    for slot in ring.frames:
        slot.pins = 0
    # Copy into the ring and publish: no allocation per frame.
    jpeg = asyncio.run(source.read())
    for _ in range(10):
        hub.publish(jpeg, 5000)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(100):
        hub.publish(jpeg, 5000)
    assert gc.mem_alloc() - before < 100, gc.mem_alloc() - before  # at most one rate update
    asyncio.run(source.close())


def check_frames_carry_the_replayed_flight_without_allocating():
    from machine import UART

    from dronecam.core.compat import ticks_ms
    from dronecam.core.mavlink import MavlinkReader
    from dronecam.core.telemetry import TELEMETRY_SIZE, TelemetryState, read_telemetry

    uart = UART(1, baudrate=57600, rx=44, tx=43, rxbuf=1024, timeout=0)
    state = TelemetryState()
    reader = MavlinkReader(lambda m, s, c, p: state.apply(m, s, c, p, ticks_ms()))
    chunk = bytearray(256)
    deadline = ticks_ms() + 3000
    while state.heard_ms is None or state.satellites == 255:  # until position and GPS came
        assert ticks_ms() < deadline, reader.counters()
        count = uart.readinto(chunk)
        if count:
            reader.receive(memoryview(chunk)[:count])
    assert reader.bad_crc == 0 and reader.received > 0, reader.counters()
    source = OV2640(pins("ESP32-S3-EYE"))
    asyncio.run(source.open())
    ring = FrameRing(3, MAX_FRAME_SIZE)
    hub = Hub(ring.build, lambda capture_us: state.latest_segment(ticks_ms()))
    jpeg = asyncio.run(source.read())
    for _ in range(10):
        hub.publish(jpeg, 5000)
    frame = hub.latest
    telemetry = read_telemetry(frame.jpeg())
    assert telemetry is not None and abs(telemetry.lat_deg - 47.3977) < 0.001, telemetry
    assert telemetry.gps_fix == 3 and telemetry.satellites == 14
    assert read_tag(frame.jpeg())[1] == 5000
    assert frame.length - frame.jpeg_offset == len(jpeg) + 21 + TELEMETRY_SIZE
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(100):
        hub.publish(jpeg, 5000)
    assert gc.mem_alloc() - before < 100, gc.mem_alloc() - before  # at most one rate update
    asyncio.run(source.close())


check_presets_reach_the_camera_module()
check_capture_lifetime_and_ring()
check_frames_carry_the_replayed_flight_without_allocating()
print("device checks passed")
