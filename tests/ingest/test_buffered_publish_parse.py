"""FastPathClient takes whole buffered PUBLISH packets in bulk, and leaves paho everything else.

The stream is written to one end of a socket pair in arbitrary pieces, so packets and their
remaining-length bytes straddle read boundaries; the client's ``loop_read`` reads the other
end, as its network thread does. Whatever mix of packets arrives (QoS 0 and 1, with and
without MQTT 5 properties, payloads across every remaining-length size, PINGRESPs between
them), the arrivals must be exactly the published messages, in wire order. No broker is
involved: the point is byte-level control of where reads split the stream, which a real
broker's writes do not give (tests/ingest/test_paho_fast_path.py covers the broker side).
"""

from __future__ import annotations

import contextlib
import socket

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from ingest.buffered_socket import ChunkedReadSocket
from ingest.paho_fast_path import Arrival, FastPathClient, publish_packet, remaining_length

PINGRESP = b"\xd0\x00"
SIZES = st.sampled_from([0, 1, 120, 121, 122, 127, 128, 16250, 16383, 16384, 70000]) | st.integers(0, 400)


def _with_user_property(topic: bytes, payload: bytes, qos: int, mid: int, key: str, value: str) -> bytes:
    """A PUBLISH carrying one MQTT 5 user property (paho's own path decodes these)."""
    prop = (
        b"\x26" + len(key).to_bytes(2, "big") + key.encode() + len(value).to_bytes(2, "big") + value.encode()
    )
    head = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    head += remaining_length(len(prop)) + prop
    return bytes([0x30 | qos << 1]) + remaining_length(len(head) + len(payload)) + head + payload


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, bytes, list[Arrival], list[int]]:
    mqtt5 = draw(st.booleans())
    wire, expected = bytearray(), []
    for i in range(draw(st.integers(1, 40))):
        if draw(st.integers(0, 9)) == 0:
            wire += PINGRESP
        topic = draw(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
        payload = bytes(j % 251 for j in range(draw(SIZES)))
        qos, mid = draw(st.integers(0, 1)), i + 1
        mid = mid if qos else 0
        if mqtt5 and draw(st.integers(0, 4)) == 0:
            wire += _with_user_property(topic.encode(), payload, qos, mid, "seq", str(i))
            expected.append((topic, payload, qos, mid, (("seq", str(i)),)))
        else:
            wire += publish_packet(topic.encode(), payload, mqtt5=mqtt5, qos=qos, mid=mid)
            expected.append((topic, payload, qos, mid, ()))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12, unique=True)))
    return mqtt5, bytes(wire), expected, cuts


def _client(mqtt5: bool, sock: socket.socket, into: list[Arrival]) -> FastPathClient:
    client = FastPathClient(
        CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311,
        manual_ack=True,
        on_arrivals=into.extend,
    )
    sock.setblocking(False)
    client._sock = ChunkedReadSocket(sock)  # as _create_socket wraps a connected socket
    return client


def _read_all(client: FastPathClient, reader: socket.socket) -> None:
    """Call ``loop_read`` until everything written so far has been read and handled."""
    while True:
        if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("the client gave up on a well-formed stream")
        if client._sock.pending():  # type: ignore[union-attr]
            continue
        try:
            reader.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return


@settings(max_examples=150, deadline=None)
@given(streams())
def test_any_split_of_any_mix_arrives_exactly_in_order(
    stream: tuple[bool, bytes, list[Arrival], list[int]],
) -> None:
    mqtt5, wire, expected, cuts = stream
    writer, reader = socket.socketpair()
    got: list[Arrival] = []
    try:
        client = _client(mqtt5, reader, got)
        writer.setblocking(False)
        for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            piece = memoryview(wire)[start:stop]
            while piece:  # write what the socket takes, then let the client read it
                with contextlib.suppress(BlockingIOError):  # full: read first
                    piece = piece[writer.send(piece) :]
                _read_all(client, reader)
        _read_all(client, reader)
        assert got == expected
        fast = sum(1 for *_, props in expected if not props)
        assert client.fast_path_count == fast  # every property-free packet took the lean path
    finally:
        writer.close()
        reader.close()


def test_bulk_taking_stops_at_a_packet_it_does_not_handle() -> None:
    """A malformed packet in the middle: the ones before it arrive, paho reports the rest."""
    good = publish_packet(b"a/b", b"one", mqtt5=False, qos=1, mid=7)
    bad = b"\x32\xff\xff\xff\xff\x01"  # a remaining length of five bytes: a protocol error
    writer, reader = socket.socketpair()
    got: list[Arrival] = []
    try:
        client = _client(False, reader, got)
        writer.sendall(good + good + bad)
        rc = client.loop_read()
        assert got == [("a/b", b"one", 1, 7, ())] * 2
        assert rc == mqtt.MQTT_ERR_PROTOCOL
    finally:
        writer.close()
        reader.close()
