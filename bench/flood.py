"""A separate publisher process: publish ``topic<TAB>payload`` lines from a file.

    python bench/flood.py HOST PORT FILE [--rate MSGS_PER_S] [--stamp] [--qos 0|1]

``--stamp`` rewrites each payload's time (JSON ``ts``, SenML ``bt``) to the publish time
(latency runs). The process exits once the broker has acknowledged every QoS 1 message.

This is a load generator, not a client of the system under test, and it must outrun what
it measures: paho's ``publish`` tops out at about 4,000 msg/s on the 2-core machines here,
below the rates the latency run offers. So it speaks the few bytes of MQTT 3.1.1 it needs
(CONNECT, PUBLISH, PUBACK) on a plain socket, writing packets in bulk, with at most
``--window`` messages unacknowledged.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.paho_fast_path import publish_packet, remaining_length


def _connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid  # clean, no keepalive
    return b"\x10" + remaining_length(len(body)) + body


class _Acks(threading.Thread):
    """Counts PUBACKs off the socket; ``outstanding`` is what the broker has not confirmed."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.acked = 0
        self.cond = threading.Condition()
        self.error: str | None = None
        self.pong = threading.Event()

    def run(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:  # closed by main() once everything is acknowledged
                data = b""
            if not data:
                with self.cond:
                    self.error = self.error or "broker closed the connection"
                    self.cond.notify_all()
                return
            buf += data
            n = 0
            pos = 0
            while len(buf) - pos >= 2:
                mult, length, i = 1, 0, pos + 1
                while i < len(buf):
                    length += (buf[i] & 127) * mult
                    mult *= 128
                    i += 1
                    if not buf[i - 1] & 128:
                        break
                else:
                    break  # length bytes incomplete
                if len(buf) - i < length:
                    break
                if buf[pos] & 0xF0 == 0x40:
                    n += 1
                elif buf[pos] & 0xF0 == 0xD0:
                    self.pong.set()
                elif buf[pos] & 0xF0 == 0x20 and buf[i + 1] != 0:
                    self.error = f"connection refused: {buf[i + 1]}"
                pos = i + length
            buf = buf[pos:]
            with self.cond:
                self.acked += n
                self.cond.notify_all()

    def wait_below(self, sent: int, window: int) -> None:
        with self.cond:
            while sent - self.acked >= window and self.error is None:
                self.cond.wait(1.0)
            if self.error:
                raise SystemExit(self.error)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("file")
    ap.add_argument("--rate", type=float, default=0.0, help="messages per second; 0 = as fast as possible")
    ap.add_argument("--stamp", action="store_true")
    ap.add_argument("--qos", type=int, default=1, choices=(0, 1))
    ap.add_argument("--window", type=int, default=5000, help="QoS 1 messages unacknowledged at most")
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        lines = [line.split(b"\t", 1) for line in f.read().splitlines()]
    sock = socket.create_connection((args.host, args.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_connect_packet(f"flood-{time.time_ns()}"))
    acks = _Acks(sock)
    acks.start()
    out: list[bytes] = []
    t0 = time.perf_counter()
    for i, (topic, payload) in enumerate(lines):
        if args.stamp:
            doc = orjson.loads(payload)
            if isinstance(doc, list):  # SenML: the base time
                doc[0]["bt"] = round(time.time(), 3)
            else:
                doc["ts"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            payload = orjson.dumps(doc)
        out.append(publish_packet(topic, payload, mqtt5=False, qos=args.qos, mid=i % 65535 + 1))
        ahead = (i + 1) / args.rate - (time.perf_counter() - t0) if args.rate else 0.0
        if ahead > 0 or len(out) >= 256:
            sock.sendall(b"".join(out))
            out.clear()
            if args.qos:
                acks.wait_below(i + 1, args.window)
            if ahead > 0:
                time.sleep(ahead)
    sock.sendall(b"".join(out))
    if args.qos:
        acks.wait_below(len(lines), 1)
    else:  # QoS 0 has no acknowledgement: the answer to a PINGREQ follows every PUBLISH before it
        sock.sendall(b"\xc0\x00")
        if not acks.pong.wait(60):
            raise SystemExit("no PINGRESP from the broker")
    elapsed = time.perf_counter() - t0
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    print(f"published {len(lines)} in {elapsed:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
