"""EXIF GPS for a JPEG from its telemetry: where, how high, when and which way (docs/mavlink.md).

`geotag(jpeg, telemetry)` returns the JPEG with an APP1 Exif segment after SOI holding the
GPS IFD (latitude, longitude, altitude, UTC time and date, speed, image direction, DOP) and
DateTimeOriginal, so photo and mapping tools place it. Pure: struct only, no calendar library.
"""

import struct

from .protocol import SOI, strip_tags

_ASCII = 2
_BYTE = 1
_SHORT = 3
_LONG = 4
_RATIONAL = 5
_TYPE_BYTES = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8}


def civil_from_unix_ms(unix_ms: int):
    """(year, month, day, hour, minute, second, millisecond) in UTC (H. Hinnant's algorithm)."""
    seconds, millis = divmod(unix_ms, 1000)
    days, seconds = divmod(seconds, 86400)
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day, seconds // 3600, seconds // 60 % 60, seconds % 60, millis


def _rational(value: float, denominator: int):
    return (round(abs(value) * denominator), denominator)


def _degrees(value: float):
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return [(degrees, 1), (minutes, 1), _rational(seconds, 10000)]


def _ifd(entries, start: int, next_ifd: int = 0) -> bytes:
    """One IFD at TIFF offset `start`: entries (tag, type, values), sorted, data after it."""
    entries = sorted(entries)
    data_at = start + 2 + 12 * len(entries) + 4
    table = struct.pack(">H", len(entries))
    data = b""
    for tag, kind, values in entries:
        if kind == _ASCII:
            raw = values.encode() + b"\x00"
            count = len(raw)
        elif kind == _RATIONAL:
            raw = b"".join(struct.pack(">II", n, d) for n, d in values)
            count = len(values)
        else:
            code = {_BYTE: "B", _SHORT: "H", _LONG: "I"}[kind]
            raw = struct.pack(">%d%s" % (len(values), code), *values)
            count = len(values)
        if len(raw) <= 4:
            table += struct.pack(">HHI", tag, kind, count) + raw + b"\x00" * (4 - len(raw))
        else:
            table += struct.pack(">HHII", tag, kind, count, data_at + len(data))
            data += raw
            if len(data) % 2:
                data += b"\x00"
    return table + struct.pack(">I", next_ifd) + data


def _ifd_size(entries) -> int:
    return len(_ifd(entries, 0))


def exif_segment(telemetry) -> bytes:
    """The APP1 Exif segment for `telemetry` (a core.telemetry.Telemetry); b"" if it has no fix."""
    if telemetry is None or telemetry.lat_deg is None or telemetry.lon_deg is None:
        return b""
    gps: list = [
        (0x0000, _BYTE, [2, 3, 0, 0]),
        (0x0001, _ASCII, "N" if telemetry.lat_deg >= 0 else "S"),
        (0x0002, _RATIONAL, _degrees(telemetry.lat_deg)),
        (0x0003, _ASCII, "E" if telemetry.lon_deg >= 0 else "W"),
        (0x0004, _RATIONAL, _degrees(telemetry.lon_deg)),
        (0x0012, _ASCII, "WGS-84"),
    ]
    if telemetry.alt_msl_m is not None:
        gps.append((0x0005, _BYTE, [0 if telemetry.alt_msl_m >= 0 else 1]))
        gps.append((0x0006, _RATIONAL, [_rational(telemetry.alt_msl_m, 1000)]))
    if telemetry.hdop is not None:
        gps.append((0x000B, _RATIONAL, [_rational(telemetry.hdop, 100)]))
    if telemetry.groundspeed_mps is not None:
        gps.append((0x000C, _ASCII, "K"))
        gps.append((0x000D, _RATIONAL, [_rational(telemetry.groundspeed_mps * 3.6, 100)]))
    if telemetry.heading_deg is not None:
        gps.append((0x0010, _ASCII, "T"))
        gps.append((0x0011, _RATIONAL, [_rational(telemetry.heading_deg, 100)]))
    ifd0: list = [(0x8825, _LONG, [0])]
    exif: list = []
    if telemetry.time_unix_ms is not None:
        year, month, day, hour, minute, second, millis = civil_from_unix_ms(telemetry.time_unix_ms)
        stamp = "%04d:%02d:%02d %02d:%02d:%02d" % (year, month, day, hour, minute, second)
        gps.append((0x0007, _RATIONAL, [(hour, 1), (minute, 1), (second * 1000 + millis, 1000)]))
        gps.append((0x001D, _ASCII, "%04d:%02d:%02d" % (year, month, day)))
        ifd0.append((0x0132, _ASCII, stamp))
        ifd0.append((0x8769, _LONG, [0]))
        exif = [
            (0x9003, _ASCII, stamp),  # DateTimeOriginal
            (0x9010, _ASCII, "+00:00"),  # OffsetTimeOriginal: the time is UTC
            (0x9291, _ASCII, "%03d" % millis),  # SubSecTimeOriginal
        ]
    # Offsets depend on the sizes before them: IFD0 at 8, then the Exif IFD, then GPS.
    exif_at = 8 + _ifd_size(ifd0)
    gps_at = exif_at + (_ifd_size(exif) if exif else 0)
    ifd0 = [
        (tag, kind, [gps_at] if tag == 0x8825 else [exif_at] if tag == 0x8769 else values)
        for tag, kind, values in ifd0
    ]
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + _ifd(ifd0, 8)
    if exif:
        tiff += _ifd(exif, exif_at)
    tiff += _ifd(gps, gps_at)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def geotag(jpeg, telemetry) -> bytes:
    """The JPEG without dronecam's frame tags, with EXIF GPS from `telemetry` if it has a fix."""
    plain = strip_tags(jpeg)
    segment = exif_segment(telemetry)
    if not segment:
        return plain
    return SOI + segment + plain[2:]
