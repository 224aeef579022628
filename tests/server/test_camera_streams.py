"""server/camera_streams.py: how each kind of stream is announced to a ground station."""

from dronecam.server.camera_streams import (
    ENCODING_H264,
    STREAM_MPEG_TS,
    STREAM_RTPUDP,
    STREAM_RTSP,
    h264_stream,
)


def test_pushed_streams_are_announced_where_the_ground_station_listens():
    rtp = h264_stream("rtp://192.168.1.10:5600", "10.0.0.2", 640, 480, 30)
    assert rtp is not None and (rtp.kind, rtp.uri, rtp.encoding) == (
        STREAM_RTPUDP, "udp://0.0.0.0:5600", ENCODING_H264,
    )  # fmt: skip
    ts = h264_stream("udp://192.168.1.10:5601", "10.0.0.2", 640, 480, 30)
    assert ts is not None and (ts.kind, ts.uri) == (STREAM_MPEG_TS, "udp://0.0.0.0:5601")


def test_an_rtsp_server_is_announced_by_an_address_others_reach_without_credentials():
    local = h264_stream("rtsp://127.0.0.1:8554/drone", "10.0.0.2", 640, 480, 30)
    assert local is not None and (local.kind, local.uri) == (
        STREAM_RTSP,
        "rtsp://10.0.0.2:8554/drone",
    )
    remote = h264_stream("rtsp://user:pw@media.example:8554/cam", "10.0.0.2", 640, 480, 30)
    assert remote is not None and remote.uri == "rtsp://media.example:8554/cam"
    assert h264_stream("file:///tmp/x.ts", "10.0.0.2", 640, 480, 30) is None
