"""The frame tag inside H.264: an SEI user_data_unregistered message (docs/h264.md §The tag).

Each access unit the H.264 output sends carries, before its first slice, one SEI NAL unit
whose user_data_unregistered payload is a fixed UUID, then the tag version, the frame's
sequence number and its capture time: the JPEG tag's fields (docs/protocol.md §5.1), so
latency and gaps stay measurable through any H.264 player that hands over the NAL units.
Works on Annex B byte streams (start codes), what FFmpeg's encoders and demuxers exchange.
"""

from __future__ import annotations

import struct

TAG_UUID = bytes.fromhex("3a4ad69fde33442094451ec8c154dd05")
TAG_VERSION = 1
_TAG = struct.Struct(">BIQ")  # version, seq, capture_us
NAL_SEI = 6
SEI_USER_DATA_UNREGISTERED = 5
START_CODE = b"\x00\x00\x00\x01"


def escape(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes: no 00 00 0x (x <= 3) may appear inside a NAL unit."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def unescape(payload: bytes) -> bytes:
    """Remove emulation prevention bytes (the 03 in 00 00 03)."""
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def tag_nal(seq: int, capture_us: int) -> bytes:
    """The SEI NAL unit (with its start code) that carries one frame's tag."""
    payload = TAG_UUID + _TAG.pack(TAG_VERSION, seq & 0xFFFFFFFF, capture_us)
    rbsp = bytes((SEI_USER_DATA_UNREGISTERED, len(payload))) + payload + b"\x80"
    return START_CODE + bytes((NAL_SEI,)) + escape(rbsp)


def nal_units(access_unit: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit's bytes after its start code, in an Annex B buffer."""
    starts = []
    position = access_unit.find(b"\x00\x00\x01")
    while position >= 0:
        starts.append(position + 3)
        position = access_unit.find(b"\x00\x00\x01", position + 3)
    units = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(access_unit)
        while end > start and access_unit[end - 1] == 0:  # the next start code's leading zero
            end -= 1
        units.append((start, end))
    return units


def insert_tag(access_unit: bytes, seq: int, capture_us: int) -> bytes:
    """The access unit with the tag's SEI just before its first slice (H.264 §7.4.1.2.3)."""
    for start, end in nal_units(access_unit):
        if start < end and 1 <= access_unit[start] & 0x1F <= 5:
            cut = start - 3
            if cut > 0 and access_unit[cut - 1] == 0:
                cut -= 1
            return access_unit[:cut] + tag_nal(seq, capture_us) + access_unit[cut:]
    return access_unit + tag_nal(seq, capture_us)


def read_tag(access_unit: bytes) -> tuple[int, int] | None:
    """(seq, capture_us) from the tag's SEI in an access unit, or None if it has none."""
    found = read_tags(access_unit)
    return found[0] if found else None


def read_tags(stream: bytes) -> list[tuple[int, int]]:
    """Every tag in an Annex B byte stream (access units, or a whole recorded stream)."""
    found = []
    for start, end in nal_units(stream):
        if start >= end or stream[start] & 0x1F != NAL_SEI:
            continue
        rbsp = unescape(stream[start + 1 : end])
        position = 0
        while position + 2 <= len(rbsp) and rbsp[position] != 0x80:
            kind, position = _sei_number(rbsp, position)
            size, position = _sei_number(rbsp, position)
            body = rbsp[position : position + size]
            position += size
            if (
                kind == SEI_USER_DATA_UNREGISTERED
                and len(body) >= 16 + _TAG.size
                and body[:16] == TAG_UUID
            ):
                version, seq, capture_us = _TAG.unpack_from(body, 16)
                if version == TAG_VERSION:
                    found.append((seq, capture_us))
    return found


def _sei_number(rbsp: bytes, position: int) -> tuple[int, int]:
    """An SEI payload type or size: 0xFF bytes add 255 each, the last byte ends it."""
    value = 0
    while position < len(rbsp) and rbsp[position] == 0xFF:
        value += 255
        position += 1
    if position < len(rbsp):
        value += rbsp[position]
    return value, position + 1
