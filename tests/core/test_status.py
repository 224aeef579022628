"""core/status.py: what both servers say about themselves (core_checks.py runs it on MicroPython)."""

import json

from core_checks import JPEG, check_status

from dronecam.core import hub, protocol, source, status
from dronecam.core.hub import Hub
from dronecam.core.source import Feed
from dronecam.sources.synthetic import SyntheticCamera


def _status(extra=None) -> status.ServerStatus:
    feed = Feed(SyntheticCamera(fps=15), Hub(), log=lambda line: None)
    return status.ServerStatus(feed, 5, 1000, 5000, extra)


def test_the_shared_checks_pass_on_cpython():
    check_status(status, source, hub, protocol)


def test_welcome_carries_the_source_and_limits():
    welcome = json.loads(_status().welcome_message())
    assert welcome["type"] == "welcome" and welcome["version"] == protocol.PROTOCOL_VERSION
    assert (welcome["width"], welcome["height"], welcome["fps"]) == (640, 480, 15)


def test_a_server_adds_its_own_fields_to_heartbeats_and_stats():
    server_status = _status(lambda: {"encoder_fps": 12.5})
    subscription = server_status.hub.subscribe(lambda: None)
    server_status.hub.publish(JPEG, 1)
    subscription.take()
    heartbeat = json.loads(server_status.heartbeat_message())
    stats = json.loads(server_status.stats_message(subscription))
    assert heartbeat["encoder_fps"] == stats["encoder_fps"] == 12.5
    assert heartbeat["uptime_s"] == 0 and heartbeat["camera_restarts"] == 0
    assert stats["frames"] == 1 and list(stats)[:4] == ["type", "clients", "fps", "frames"]


def test_clock_answers_with_the_servers_clock():
    server_status = _status()
    subscription = server_status.hub.subscribe(lambda: None)
    reply, credit_changed = server_status.answer("clock", subscription)
    assert not credit_changed
    assert 0 <= json.loads(reply)["server_us"] <= server_status.clock.now_us()


def test_the_banner_names_the_viewer_page():
    lines = status.banner("wss://h:8443/ws", viewer=True)
    assert lines[2] == "Connect directly to WebSocket - no HTTP interface (viewer page at /)"
    assert len(lines) == 3
