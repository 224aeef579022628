"""HTTP outputs on the WebSocket port: the table of routes and the answers they share.

An HTTP output (`mjpeg`, `snapshot`) is a stream output with a `routes` table: path to a
handler that gets the connection the request arrived on. A handler either answers with one
response (the connection then closes, as for a 404) or hands the transport to a client
output of its own (`Connection.hand_over`). Without such outputs the server answers every
path but `/ws` as before: a short non-200 answer (docs/protocol.md §1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from . import OutputServer


class HttpExchange(Protocol):
    """The connection a request arrived on, as a route handler sees it (websocket.Connection)."""

    ws: ServerProtocol
    server: OutputServer
    peer: str

    def hand_over(self, output: asyncio.Protocol) -> None:
        """Give the transport to another output; the connection is done."""


Route = Callable[[HttpExchange, Request], None]


def routes_of(outputs: Iterable[object]) -> dict[str, Route]:
    """The paths the server's outputs answer, each with its handler."""
    table: dict[str, Route] = {}
    for output in outputs:
        routes: Mapping[str, Route] = getattr(output, "routes", {})
        table.update(routes)
    return table


def response(
    status: int, reason: str, headers: list[tuple[str, str]], body: bytes = b""
) -> Response:
    """A response that closes the connection and is never cached (live images go stale at once)."""
    fields = [*headers, ("Cache-Control", "no-store"), ("Connection", "close")]
    if body:
        fields.append(("Content-Length", str(len(body))))
    return Response(status, reason, Headers(fields), body)


def refuse(connection: HttpExchange, status: int, text: str) -> None:
    """Answer a request with a short plain-text refusal (503 full, 503 no frame...) and close."""
    answer = connection.ws.reject(status, text)
    answer.headers["Cache-Control"] = "no-store"
    if status == 503:
        answer.headers["Retry-After"] = "1"
    connection.ws.send_response(answer)
