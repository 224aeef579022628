"""What a server answers to each client command (docs/protocol.md §3), for both servers."""

from . import protocol
from .protocol import ProtocolError


def answer(text: str, subscription, stats_message, now_us):
    """The reply to one command from the client at `subscription`, and whether its credit changed.

    Args:
        stats_message: builds the `stats` reply for a subscription (the server knows its fields).
        now_us: the server's monotonic clock, the one frame tags use.
    Returns:
        (reply text or None, credit_changed). When the credit changed (`ack`, `window`), the
        caller marks the client as making progress and offers it the newest frame.
    """
    try:
        command, argument = protocol.parse_command(text)
    except ProtocolError as error:
        return error.reply, False
    if command == protocol.ACK:
        subscription.acknowledge(argument)
        return None, True
    if command == protocol.WINDOW:
        subscription.set_window(argument)
        return protocol.window_message(argument), True
    if command == protocol.PING:
        return protocol.PONG, False
    if command == protocol.GET_STATS:
        return stats_message(subscription), False
    return protocol.clock_message(now_us()), False
