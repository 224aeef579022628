"""The host stream server: `build_server` wires a source, a feed, a hub and the listener."""

from .listener import StreamServer, raise_open_files_limit
from .settings import ServerSettings
from .wiring import build_server, running_server

__all__ = [
    "ServerSettings",
    "StreamServer",
    "build_server",
    "raise_open_files_limit",
    "running_server",
]
