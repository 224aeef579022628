"""TLS as a byte transform over a connection's own TCP transport (stdlib `ssl.SSLObject`).

asyncio's and uvloop's TLS transports keep their own write buffers with their own pause rule
(`buffered >= high`, where a TCP transport pauses at `buffered > high`) over a TCP transport
whose 64 KB limits are out of reach: at (0, 0) a TLS stream paused after every write and
resumed at the next heartbeat (1 fps), and several frames could wait for a slow client. Here
TLS only encrypts and decrypts; what is written goes straight to the connection's TCP
transport, so plain and TLS clients share one flow control (docs/architecture.md §Host server).
`TlsTransport` is that TCP transport seen through the session, for every output alike.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any


class TlsSession:
    """One server-side TLS session: ciphertext in, plaintext out, and back."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshake_done = False

    def receive(self, data: bytes) -> bytes:
        """Plaintext that `data` completes; b"" while the handshake goes on.

        Raises:
            ssl.SSLError: not TLS, or a failed handshake (the connection should be dropped).
        """
        self._incoming.write(data)
        if not self.handshake_done:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            self.handshake_done = True
        chunks = []
        try:
            while True:
                chunk = self._tls.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):  # no more yet; close_notify
            pass
        return b"".join(chunks)

    def encrypt(self, data: bytes) -> bytes:
        """The TLS records that carry `data` (plus anything the session had to send)."""
        view = memoryview(data)
        while view:
            view = view[self._tls.write(view) :]
        return self._outgoing.read()

    def take_output(self) -> bytes:
        """What the session itself has to send now (handshake, session tickets)."""
        return self._outgoing.read()

    def close_notify(self) -> bytes:
        """The close_notify alert that ends the session cleanly, b"" if it cannot be sent."""
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # the peer's close_notify is not awaited
        except (ssl.SSLError, ValueError):
            return b""
        return self._outgoing.read()


class TlsTransport(asyncio.Transport):
    """A TCP transport seen through a TLS session: writes are encrypted, flow control is TCP's.

    The TCP transport keeps calling its protocol (`pause_writing`, `resume_writing`,
    `connection_lost`) directly; that protocol passes what it receives through `receive`.
    """

    def __init__(self, tcp: asyncio.Transport, context: ssl.SSLContext) -> None:
        super().__init__()
        self.tcp = tcp
        self.session = TlsSession(context)

    def receive(self, data: bytes) -> bytes:
        """Decrypt `data`, sending what the handshake needs; the plaintext (b"" for none yet).

        Raises:
            ssl.SSLError: not TLS, or a failed handshake.
        """
        plaintext = self.session.receive(data)
        output = self.session.take_output()  # handshake records, session tickets
        if output:
            self.tcp.write(output)
        return plaintext

    def write(self, data: bytes | bytearray | memoryview) -> None:
        records = self.session.encrypt(bytes(data))
        if records:
            self.tcp.write(records)

    def close(self) -> None:
        if not self.tcp.is_closing():
            self.tcp.write(self.session.close_notify())
        self.tcp.close()

    def abort(self) -> None:
        self.tcp.abort()

    def is_closing(self) -> bool:
        return self.tcp.is_closing()

    def can_write_eof(self) -> bool:
        return self.tcp.can_write_eof()

    def write_eof(self) -> None:
        """close_notify, then a TCP half-close: the peer may still send (its close reply)."""
        self.tcp.write(self.session.close_notify())
        self.tcp.write_eof()

    def get_write_buffer_size(self) -> int:
        return self.tcp.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.tcp.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.tcp.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.tcp.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.tcp.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.tcp.get_protocol()

    def is_reading(self) -> bool:
        return self.tcp.is_reading()

    def pause_reading(self) -> None:
        self.tcp.pause_reading()

    def resume_reading(self) -> None:
        self.tcp.resume_reading()
