"""What a server says about itself and how it judges clients, the same on both servers (§1-§4).

Welcome, heartbeat and stats messages, the full-server refusal, the command hand-off, the
stream-timeout rule and the log lines around them. The host server and the firmware only
move these bytes and add their own figures through `extra_fields`.
"""

from . import commands, protocol
from .compat import ticks_diff, ticks_ms


def banner(url: str, viewer: bool = False, http_urls=(), notes=()) -> list:
    """The start-up lines (the original device's three, then `notes`), without the log prefix.

    With HTTP outputs (`http_urls`) the third line lists them instead of "no HTTP interface".
    """
    if http_urls:
        third = "HTTP outputs: %s" % ", ".join(http_urls)
    else:
        third = "Connect directly to WebSocket - no HTTP interface%s" % (
            " (viewer page at /)" if viewer else ""
        )
    lines = [
        "WebSocket-only video stream server started successfully!",
        "WebSocket endpoint: %s" % url,
        third,
    ]
    lines.extend(notes)
    return lines


class ServerStatus:
    """A server's figures and verdicts, computed from its feed, hub and limits.

    Args:
        extra_fields: returns a dict of the server's own fields for heartbeats and stats
            (the host's stream outputs, the firmware's heap and ring), or None.
    """

    def __init__(
        self,
        feed,
        max_clients: int,
        heartbeat_interval_ms: int,
        stream_timeout_ms: int,
        extra_fields=None,
        clock=None,
    ) -> None:
        self.feed = feed
        self.hub = feed.hub
        self.clock = clock or feed.clock
        self.max_clients = max_clients
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.stream_timeout_ms = stream_timeout_ms
        self.extra_fields = extra_fields
        self.started_ms = ticks_ms()

    def welcome_message(self) -> str:
        source = self.feed.source
        fields = {
            "version": protocol.PROTOCOL_VERSION,
            "max_clients": self.max_clients,
            "heartbeat_ms": self.heartbeat_interval_ms,
            "source": source.name,
        }
        for name in ("width", "height", "fps"):
            if getattr(source, name, None):
                fields[name] = getattr(source, name)
        return protocol.welcome_message(fields)

    def shared_fields(self) -> dict:
        """Fields beyond the contract that every heartbeat and stats message carries."""
        fields = {
            "frames": self.hub.frames_published,
            "max_clients": self.max_clients,
            "uptime_s": ticks_diff(ticks_ms(), self.started_ms) // 1000,
        }
        fields.update(self.feed.status())
        if self.extra_fields is not None:
            fields.update(self.extra_fields())
        return fields

    def heartbeat_message(self) -> str:
        hub = self.hub
        return protocol.heartbeat_message(hub.fps(), hub.clients, self.shared_fields())

    def stats_message(self, subscription) -> str:
        fields = self.shared_fields()
        del fields["frames"]  # the contract's own `frames` field says it
        fields["sent"] = subscription.frames_sent
        fields["dropped"] = subscription.frames_dropped
        fields["window"] = subscription.window
        hub = self.hub
        return protocol.stats_message(hub.clients, hub.fps(), hub.frames_published, fields)

    def answer(self, text: str, subscription):
        """The reply to a client's command and whether its credit changed (core/commands.py)."""
        return commands.answer(text, subscription, self.stats_message, self.clock.now_us)

    # Joining and leaving (§4).
    def is_full(self) -> bool:
        return self.hub.clients >= self.max_clients

    def refusal(self, peer: str):
        """Turning away a client over MAX_CLIENTS: (log line, error message, close code, reason)."""
        limit = self.max_clients
        message = "server full: %d of %d clients connected, try again later" % (limit, limit)
        return (
            "refused %s: server full (%d clients)" % (peer, limit),
            protocol.error_message("server_full", message),
            protocol.CLOSE_TRY_AGAIN_LATER,
            "server full (%d clients)" % limit,
        )

    def connected_line(self, peer: str) -> str:
        return "client %s connected, %d of %d" % (
            peer,
            self.hub.clients,
            self.max_clients,
        )

    def disconnected_line(self, peer: str, subscription) -> str:
        return "client %s disconnected (%d frames sent, %d dropped), %d connected" % (
            peer,
            subscription.frames_sent,
            subscription.frames_dropped,
            self.hub.clients,
        )

    # The stream timeout (§1): checked once per heartbeat.
    def stream_timed_out(self, subscription, now_ms: int) -> bool:
        return subscription.stream_timed_out(now_ms, self.stream_timeout_ms)

    def stream_timeout_line(self, peer: str) -> str:
        return "closing %s: took no frame for %d ms" % (peer, self.stream_timeout_ms)
