"""core/commands.py: each command's reply and its effect on the client's credit."""

import json

from dronecam.core.commands import answer
from dronecam.core.hub import Hub


def _answer(text: str, subscription=None):
    subscription = subscription or Hub().subscribe(lambda: None)
    return answer(text, subscription, lambda sub: '{"type": "stats"}', lambda: 1234)


def test_replies():
    assert _answer("ping") == ("pong", False)
    assert _answer("get_stats") == ('{"type": "stats"}', False)
    assert json.loads(_answer("clock")[0]) == {"type": "clock", "server_us": 1234}
    reply, credit_changed = _answer("nonsense")
    assert json.loads(reply)["error"] == "unknown_command" and not credit_changed


def test_window_and_ack_change_the_credit():
    subscription = Hub().subscribe(lambda: None)
    reply, credit_changed = _answer("window 3", subscription)
    assert json.loads(reply) == {"type": "window", "window": 3} and credit_changed
    assert subscription.window == 3
    subscription.unacknowledged = 3
    assert _answer("ack 2", subscription) == (None, True)
    assert subscription.unacknowledged == 1
