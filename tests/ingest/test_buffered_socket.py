"""ChunkedReadSocket serves paho's small reads from one large read, and says what is buffered."""

from __future__ import annotations

import socket

from ingest.buffered_socket import ChunkedReadSocket


def test_small_reads_come_from_one_large_read_and_pending_counts_the_rest() -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(b"\x30\x05hello\x30\x03abc")
        wrapped = ChunkedReadSocket(b)
        assert wrapped.recv(1) == b"\x30"
        assert wrapped.pending() == 11  # the rest of both packets is already read
        assert wrapped.recv(1) == b"\x05"
        assert wrapped.recv(5) == b"hello"
        assert wrapped.recv(1) == b"\x30"
        assert wrapped.recv(100) == b"\x03abc"  # never more than what is buffered
        assert wrapped.pending() == 0
        assert wrapped.fileno() == b.fileno()  # everything else is the socket's
        a.close()
        assert wrapped.recv(1) == b""  # the peer closed
    finally:
        b.close()
