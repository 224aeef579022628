"""A small sans-I/O MAVLink 1 and 2 reader for the messages dronecam uses (docs/mavlink.md).

Bytes go in (`receive`); each complete message whose checksum (with its CRC_EXTRA) is right
is handed to `on_message(msgid, sysid, compid, payload)`. `payload` is a preallocated buffer,
zero-filled past the received length up to the message's full length (MAVLink 2 trims
trailing zeros), so `struct.unpack_from` reads every field. Garbage, bad checksums, unknown
messages and bad lengths are skipped and counted: `receive` never raises and allocates
nothing per byte. Signed MAVLink 2 messages are accepted without checking the signature.
"""

from .compat import const

STX_V1 = const(0xFE)
STX_V2 = const(0xFD)
_HEADER_V1 = const(6)  # STX, len, seq, sysid, compid, msgid
_HEADER_V2 = const(10)  # STX, len, incompat, compat, seq, sysid, compid, msgid (3 bytes)
_SIGNATURE_BYTES = const(13)
_INCOMPAT_SIGNED = const(0x01)
MAX_PACKET_BYTES = const(_HEADER_V2 + 255 + 2 + _SIGNATURE_BYTES)

# Message ids, and (CRC_EXTRA, full payload length with extensions), from the common dialect.
HEARTBEAT = const(0)
SYS_STATUS = const(1)
SYSTEM_TIME = const(2)
GPS_RAW_INT = const(24)
ATTITUDE = const(30)
GLOBAL_POSITION_INT = const(33)
VFR_HUD = const(74)
COMMAND_LONG = const(76)
BATTERY_STATUS = const(147)
GIMBAL_DEVICE_ATTITUDE_STATUS = const(285)

MESSAGES = {
    HEARTBEAT: (50, 9),
    SYS_STATUS: (124, 43),
    SYSTEM_TIME: (137, 12),
    GPS_RAW_INT: (24, 52),
    ATTITUDE: (39, 28),
    GLOBAL_POSITION_INT: (104, 28),
    VFR_HUD: (20, 20),
    COMMAND_LONG: (152, 33),
    BATTERY_STATUS: (154, 54),
    GIMBAL_DEVICE_ATTITUDE_STATUS: (137, 49),
}

# The MAVLink 1 length of a message: its payload without extension fields.
_V1_LENGTHS = {HEARTBEAT: 9, SYS_STATUS: 31, SYSTEM_TIME: 12, GPS_RAW_INT: 30, ATTITUDE: 28,
               GLOBAL_POSITION_INT: 28, VFR_HUD: 20, COMMAND_LONG: 33, BATTERY_STATUS: 36}  # fmt: skip


def crc_accumulate(byte: int, crc: int) -> int:
    """One step of MAVLink's CRC-16/MCRF4XX (X.25)."""
    tmp = (byte ^ crc) & 0xFF
    tmp = (tmp ^ (tmp << 4)) & 0xFF
    return ((crc >> 8) ^ (tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xFFFF


def checksum(data, start: int, end: int, crc_extra: int) -> int:
    """The checksum of data[start:end] followed by `crc_extra`, as MAVLink sends it."""
    crc = 0xFFFF
    for index in range(start, end):
        crc = crc_accumulate(data[index], crc)
    return crc_accumulate(crc_extra, crc)


class MavlinkReader:
    """Splits a byte stream into checked MAVLink messages; counts everything it throws away.

    Args:
        on_message: called as on_message(msgid, sysid, compid, payload) for each good message
            of MESSAGES; `payload` is reused by the next message, so decode it at once.
        messages: the {msgid: (crc_extra, length)} table to accept (default: MESSAGES).
    """

    def __init__(self, on_message, messages=None) -> None:
        self.on_message = on_message
        self.messages = MESSAGES if messages is None else messages
        self.received = 0  # good messages handed on
        self.bad_crc = 0  # a start byte whose packet failed its checksum
        self.bad_length = 0  # a start byte of a known message longer than it can be
        self.unknown = 0  # a header of a message we do not decode: its bytes rescanned
        self.unsupported = 0  # MAVLink 2 incompatibility flags we do not know
        self.garbage_bytes = 0  # bytes skipped looking for a start byte
        self._buffer = bytearray(2 * MAX_PACKET_BYTES)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        self.payload = bytearray(256)

    def counters(self) -> dict:
        return {
            "received": self.received,
            "bad_crc": self.bad_crc,
            "bad_length": self.bad_length,
            "unknown": self.unknown,
            "unsupported": self.unsupported,
            "garbage_bytes": self.garbage_bytes,
        }

    def receive(self, data) -> None:
        """Feed any number of bytes (bytes, bytearray or memoryview); never raises on content."""
        data = memoryview(data)  # slices of it below copy nothing
        taken = 0
        size = len(data)
        while taken < size:
            if self._start:
                pending = self._end - self._start
                self._view[0:pending] = self._view[self._start : self._end]
                self._start, self._end = 0, pending
            room = min(len(self._buffer) - self._end, size - taken)
            self._view[self._end : self._end + room] = data[taken : taken + room]
            self._end += room
            taken += room
            self._parse()

    def _parse(self) -> None:
        buffer = self._buffer
        while True:
            start = self._start
            end = self._end
            while start < end and buffer[start] != STX_V2 and buffer[start] != STX_V1:
                start += 1
            self.garbage_bytes += start - self._start
            self._start = start
            if end - start < 2:
                return
            length = buffer[start + 1]
            if buffer[start] == STX_V2:
                if end - start < _HEADER_V2:
                    return
                header = _HEADER_V2
                incompat = buffer[start + 2]
                signed = _SIGNATURE_BYTES if incompat & _INCOMPAT_SIGNED else 0
                msgid = buffer[start + 7] | buffer[start + 8] << 8 | buffer[start + 9] << 16
                sysid, compid = buffer[start + 5], buffer[start + 6]
            else:
                if end - start < _HEADER_V1:
                    return
                header, incompat, signed = _HEADER_V1, 0, 0
                msgid = buffer[start + 5]
                sysid, compid = buffer[start + 3], buffer[start + 4]
            total = header + length + 2 + signed
            known = self.messages.get(msgid)
            if known is not None and length > known[1]:
                # Longer than the message can be: a false start byte, or a broken packet.
                # Say so now rather than wait for up to 280 bytes that would fail anyway.
                self.bad_length += 1
                self._start = start + 1
                continue
            if known is None:
                # Not ours: its checksum cannot be checked without its CRC_EXTRA, so its
                # length cannot be trusted either. Skipping by it would let a false start
                # byte swallow good packets, and on a stream that repeats, forever (found by
                # hypothesis). Rescan from the next byte: every known packet inside is checked.
                self.unknown += 1
                self._start = start + 1
                continue
            if end - start < total:
                return
            self._start = self._packet(start, header, length, total, incompat, msgid, sysid, compid)

    def _packet(self, start, header, length, total, incompat, msgid, sysid, compid) -> int:
        """Check one complete candidate packet of a known message; return where parsing goes on."""
        buffer = self._buffer
        known = self.messages[msgid]
        crc_end = start + header + length
        expected = checksum(buffer, start + 1, crc_end, known[0])
        if buffer[crc_end] | buffer[crc_end + 1] << 8 != expected:
            self.bad_crc += 1
            return start + 1  # resynchronise on the next start byte
        if incompat & ~_INCOMPAT_SIGNED:
            self.unsupported += 1
            return start + total
        full = known[1]
        if header == _HEADER_V1 and length != _V1_LENGTHS.get(msgid, full):
            self.bad_length += 1
            return start + total
        payload = self.payload
        first = start + header
        for index in range(length):  # a loop, not a slice: no memoryview made per message
            payload[index] = buffer[first + index]
        for index in range(length, full):
            payload[index] = 0
        self.received += 1
        self.on_message(msgid, sysid, compid, payload)
        return start + total
