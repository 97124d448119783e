"""ChunkedReadSocket: lets paho read the broker's stream in large chunks.

paho reads every packet with at least three ``recv`` calls (the command byte, the length
bytes one by one, then the body): three system calls per message. This wrapper fills a
buffer with one large ``recv`` and serves paho's small reads from it. paho's network loop
already asks a socket for ``pending()`` bytes (it does so for TLS) and skips ``select``
while some are buffered, so nothing waits on a socket whose data is already read.
"""

from __future__ import annotations

from typing import Any

CHUNK = 256 * 1024


class ChunkedReadSocket:
    """Wraps a connected socket; every attribute but ``recv`` and ``pending`` is the socket's."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._buf):
            self._buf = self._sock.recv(max(bufsize, CHUNK))  # may raise BlockingIOError: paho handles it
            self._pos = 0
            if not self._buf:
                return b""  # the peer closed the connection
        end = self._pos + bufsize
        out = self._buf[self._pos : end]
        self._pos = min(end, len(self._buf))
        return out

    def buffer(self) -> tuple[bytes, int]:
        """The current read buffer and the position of its first unread byte."""
        return self._buf, self._pos

    def consumed(self, pos: int) -> None:
        """Mark the buffer read up to ``pos`` (a reader that parsed it in place)."""
        self._pos = pos

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
