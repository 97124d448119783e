"""FastPathClient: paho's MQTT client with a lean receive path for a high-rate subscriber.

paho does everything a general client needs for every message; a profile of the gateway
draining a backlog (README, "Where the time goes") showed where that costs a subscriber:

1. Every packet is read with three or more ``recv`` calls. ``ChunkedReadSocket`` serves
   them from one large read.
2. ``loop_read`` handles one packet per ``select`` when nothing is in flight outbound, so
   a backlog costs a ``select`` and a trip round paho's loop per message. Here a read
   drains every packet already buffered (bounded, so writes and keepalive still run).
3. Each PUBLISH builds an ``MQTTMessage`` and, on MQTT 5, a ``Properties`` object: about
   half of the client's time. A QoS 0/1 PUBLISH that carries no properties is decoded here
   in a few slices; anything else (QoS 2, user properties, a topic alias, a malformed
   packet) goes through paho's own path unchanged.
4. Even so, paho's ``_packet_read`` spent a dozen calls on each packet's header. Between
   packets, ``_take_buffered`` decodes every whole QoS 0/1 PUBLISH already in the read
   buffer in one loop, and leaves paho the first packet it does not take (one that runs past
   the buffer, or any of the above): the gateway alone went from about 50k to 160k msg/s
   (README, Benchmarks).
5. ``ack`` queues one PUBACK at a time and wakes the network thread for each. ``ack_many``
   queues a whole batch's PUBACKs as one write.

Arrivals are handed over per read, not per message: ``on_arrivals`` receives the list of
``(topic, payload, qos, mid)`` tuples and ``on_message`` deliveries that one read produced,
in wire order, so the consumer pays one queue operation per chunk. They are always handed
over before ``on_disconnect`` runs, so a consumer can tell which connection delivered them.

Only paho's receive internals are touched (``_handle_publish``, ``loop_read``,
``_create_socket``, ``_in_packet``, ``_last_bytes_received``, ``_packet_queue``,
``_do_on_disconnect``); connecting, sessions, subscriptions, keepalive, reconnects and
publishing stay paho's. ``pyproject.toml`` pins the paho minor version these internals were
read from. tests/ingest/test_paho_fast_path.py drives both paths against a real broker, and
tests/ingest/test_buffered_publish_parse.py splits mixed streams at arbitrary bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from ingest.buffered_socket import ChunkedReadSocket

_PUBACK = 0x40
_PUBLISH = 0x30
_TOPIC_LEN = _MID = struct.Struct("!H")
_PUBACK_PACKET = struct.Struct("!BBH")
#: At most this many packets per read call, so queued acks and pings are written in between.
MAX_PACKETS_PER_READ = 4096

#: (topic, payload, qos, mid, user_properties) as it came off the wire.
Arrival = tuple[str, bytes, int, int, tuple[tuple[str, str], ...]]


def publish_packet(topic: bytes, payload: bytes, *, mqtt5: bool, qos: int = 0, mid: int = 0) -> bytes:
    """A PUBLISH packet (QoS 0, or 1 with ``mid``); on MQTT 5 with an empty property list."""
    head = _TOPIC_LEN.pack(len(topic)) + topic
    if qos:
        head += _MID.pack(mid)
    if mqtt5:
        head += b"\x00"
    return bytes([_PUBLISH | qos << 1]) + remaining_length(len(head) + len(payload)) + head + payload


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length."""
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish_arrival(buf: bytes | bytearray, start: int, stop: int, qos: int, mqtt5: bool) -> Arrival | None:
    """The arrival a QoS 0/1 PUBLISH body ``buf[start:stop]`` carries, or None for paho to decode.

    None means: properties present, an empty topic before MQTT 5 (malformed), or a header
    longer than the body (truncated). paho then reports or decodes the packet as usual.
    """
    if stop - start < 2:
        return None
    tlen = (buf[start] << 8) | buf[start + 1]
    head = start + 2 + tlen + (2 if qos else 0) + (1 if mqtt5 else 0)
    if head > stop or (mqtt5 and buf[head - 1] != 0) or (tlen == 0 and not mqtt5):
        return None
    mid = (buf[head - 2 - mqtt5] << 8) | buf[head - 1 - mqtt5] if qos else 0
    topic = str(buf[start + 2 : start + 2 + tlen], "utf-8", "replace")
    return topic, bytes(buf[head:stop]), qos, mid, ()


class FastPathClient(mqtt.Client):
    """A paho client whose PUBLISH deliveries arrive in per-read lists (see the module doc)."""

    def __init__(self, *args: Any, on_arrivals: Callable[[list[Arrival]], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_arrivals = on_arrivals
        self._arrivals: list[Arrival] = []
        self.fast_path_count = 0  # PUBLISH packets decoded here, not by paho (tests read it)
        self.on_message = self._slow_arrival

    # --- reading ------------------------------------------------------------------------

    def _create_socket(self) -> Any:
        return ChunkedReadSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        n = 1
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and n < MAX_PACKETS_PER_READ:
            sock = self._sock
            if not isinstance(sock, ChunkedReadSocket) or not sock.pending():
                break
            if self._in_packet["command"] == 0:  # between packets: take every whole one buffered
                n += self._take_buffered(sock, MAX_PACKETS_PER_READ - n)
                if not sock.pending() or n >= MAX_PACKETS_PER_READ:
                    break
            rc = super().loop_read(max_packets)  # what _take_buffered leaves: partial, or not ours
            n += 1
        self._hand_over()
        return rc

    def _take_buffered(self, sock: ChunkedReadSocket, limit: int) -> int:
        """Decode the whole QoS 0/1 PUBLISH packets at the head of the read buffer, up to ``limit``.

        Stops at the first packet it does not take: one that continues past the buffer, is
        not a PUBLISH, is QoS 2, carries properties or is malformed. paho reads that one
        through ``_packet_read`` as before, so its state never sees a half-taken packet.
        """
        buf, pos = sock.buffer()
        end, mqtt5 = len(buf), self._protocol == MQTTProtocolVersion.MQTTv5
        arrivals = self._arrivals
        taken = 0
        while taken < limit and pos + 4 <= end:
            header = buf[pos]
            qos = (header & 0x06) >> 1
            if header & 0xF0 != _PUBLISH or qos == 2:
                break
            byte = buf[pos + 1]  # the remaining length: 1 to 4 bytes, 7 bits each
            length, start = byte & 0x7F, pos + 2
            shift = 7
            while byte & 0x80 and shift < 28 and start < end:
                byte = buf[start]
                length |= (byte & 0x7F) << shift
                start, shift = start + 1, shift + 7
            stop = start + length
            if byte & 0x80 or stop > end:
                break
            arrival = _publish_arrival(buf, start, stop, qos, mqtt5)
            if arrival is None:
                break
            arrivals.append(arrival)
            pos = stop
            taken += 1
        if taken:
            sock.consumed(pos)
            self.fast_path_count += taken
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()  # what paho does per packet
        return taken

    def _hand_over(self) -> None:
        if self._arrivals:
            arrivals, self._arrivals = self._arrivals, []
            self._on_arrivals(arrivals)

    def _do_on_disconnect(self, *args: Any, **kwargs: Any) -> None:
        self._hand_over()  # what this connection delivered goes out before its disconnect is told
        super()._do_on_disconnect(*args, **kwargs)

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH paho read itself (one that ran past a read buffer): the same lean decode."""
        qos = (self._in_packet["command"] & 0x06) >> 1
        packet = self._in_packet["packet"]
        mqtt5 = self._protocol == MQTTProtocolVersion.MQTTv5
        arrival = _publish_arrival(packet, 0, len(packet), qos, mqtt5) if qos < 2 else None
        if arrival is None:
            return super()._handle_publish()
        self._arrivals.append(arrival)
        self.fast_path_count += 1
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _slow_arrival(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's own delivery (properties present, QoS 2): joins the same list, in order."""
        props: tuple[tuple[str, str], ...] = ()
        if msg.properties is not None and hasattr(msg.properties, "UserProperty"):
            props = tuple(msg.properties.UserProperty)
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")
        self._arrivals.append((topic, bytes(msg.payload), msg.qos, msg.mid, props))

    # --- a live feed ----------------------------------------------------------------------

    def publish_many_qos0(self, topic: str, payloads: Iterable[bytes]) -> int:
        """Publish each payload to ``topic`` at QoS 0, all in one write; returns how many.

        For a best-effort live feed (dead letters, whose durable copy is in the store): no
        message ids, no retries, nothing kept after a disconnect, and one wake-up of the
        network thread for the lot instead of paho's per-message publish.
        """
        encoded, mqtt5 = topic.encode(), self._protocol == MQTTProtocolVersion.MQTTv5
        packets = [publish_packet(encoded, p, mqtt5=mqtt5) for p in payloads]
        if packets and self.is_connected():
            self._packet_queue(_PUBLISH, b"".join(packets), 0, 0, info=mqtt.MQTTMessageInfo(0))
            return len(packets)
        return 0

    # --- acknowledging ------------------------------------------------------------------

    def ack_many(self, mids: Iterable[int]) -> int:
        """Queue a PUBACK for each QoS 1 message id as one write; returns how many."""
        packet = b"".join([_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids])
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 0)
        return len(packet) // 4
