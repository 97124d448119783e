"""MqttGateway: MQTT 5 in, batches to the handler, acknowledgements after durable handling.

- QoS 1 with a persistent session (fixed client id, clean start off, a session expiry),
  so messages published while the pipeline is away wait on the broker.
- Manual acknowledgement: a PUBACK is sent only after the handler has committed the
  message's outcome. Acks never cross a reconnect: after one, the broker redelivers
  what we had not acknowledged and idempotent storage absorbs the copies.
- Backpressure: the MQTT 5 *receive maximum* bounds the unacknowledged messages the broker
  may push to us, and so the local queue; at QoS 0, where no such bound applies, the
  network thread stops reading once inflight + batch_max messages wait, and TCP pushes back.
- Reconnects back off exponentially (paho's reconnect delay, min → max).
- The receive path is paho's with a lean fast path for QoS 0/1 PUBLISH packets
  (ingest/paho_fast_path.py): arrivals cross to the worker one read at a time, and a batch's
  acknowledgements leave as one write.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridsense.config import MqttConfig
from gridsense.errors import Retryable
from gridsense.metrics import ACK_LATENCY_SECONDS, observe_many
from ingest.contract import BatchHandler, BatchOutcome, InboundMessage
from ingest.deadletter import DeadLetter, iso_stamps
from ingest.paho_fast_path import Arrival, FastPathClient
from ingest.rate_limit import FeedBudget
from ingest.topics import TopicScheme

log = logging.getLogger("gridsense.gateway")


class MqttGateway:
    """Owns the MQTT connection and the worker thread that feeds the batch handler."""

    def __init__(
        self,
        cfg: MqttConfig,
        scheme: TopicScheme,
        handler: BatchHandler,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._on_idle = on_idle
        self._cfg = cfg
        self._scheme = scheme
        self._handler = handler
        # One entry per socket read (up to a few thousand messages). At QoS 1 the broker's
        # flow control bounds what is unacknowledged, so the network thread never waits here
        # and keeps answering keepalives while the worker is held (a full disk); at QoS 0 it
        # waits once inflight + batch_max messages are queued, and TCP pushes back.
        self._queue: queue.Queue[list[InboundMessage]] = queue.Queue()
        self._carry: list[InboundMessage] = []  # the rest of a read larger than batch_max
        self._received = 0  # written by the network thread only
        self._taken = 0  # written by the worker only
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._pending_subacks = 0
        self._worker: threading.Thread | None = None
        self.fatal: BaseException | None = None
        self.counters: Counter[str] = Counter()
        self.dead_letter_reasons: Counter[str] = Counter()
        per_s = cfg.deadletter_feed_per_s
        self._feed_budget = FeedBudget(per_s) if per_s is not None else None
        self._client = self._make_client()

    def _make_client(self) -> FastPathClient:
        if self._cfg.protocol == "5":
            client = FastPathClient(
                CallbackAPIVersion.VERSION2,
                client_id=self._cfg.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
                on_arrivals=self._on_arrivals,
            )
        else:
            client = FastPathClient(
                CallbackAPIVersion.VERSION2,
                client_id=self._cfg.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
                on_arrivals=self._on_arrivals,
            )
        if self._cfg.username is not None:
            pw = self._cfg.password.get_secret_value() if self._cfg.password else None
            client.username_pw_set(self._cfg.username, pw)
        client.reconnect_delay_set(
            min_delay=max(1, int(self._cfg.reconnect_min_s)),
            max_delay=max(1, int(self._cfg.reconnect_max_s)),
        )
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        return client

    # --- paho callbacks (network thread) -------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _ud: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("mqtt connect refused: %s", reason)
            return
        self._generation += 1
        filters = self._cfg.partition or [self._scheme.subscription]
        self._pending_subacks = len(filters)
        for topic_filter in filters:
            client.subscribe(topic_filter, qos=self._cfg.qos)
        self.counters["connects"] += 1
        log.info(
            "mqtt connected session_present=%s generation=%d",
            flags.session_present,
            self._generation,
        )

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            log.error("subscription refused: %s", reasons)
            return
        self._pending_subacks -= 1
        if self._pending_subacks <= 0:
            self._connected.set()  # connected *and* subscribed: messages will reach us
            log.info("mqtt subscribed generation=%d", self._generation)

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connected.clear()
        self._generation += 1  # acks for messages of the lost connection must not be sent
        if not self._stop.is_set():
            self.counters["disconnects"] += 1
            log.warning("mqtt disconnected (%s); reconnecting with backoff", reason)

    def _on_arrivals(self, arrivals: list[Arrival]) -> None:
        received_at = datetime.now(UTC)  # one read: the same instant for all of them
        gen = self._generation
        batch = [
            InboundMessage(topic, payload, received_at, qos, mid, gen, props)
            for topic, payload, qos, mid, props in arrivals
        ]
        self._received += len(batch)
        self.counters["received"] += len(batch)
        self._queue.put(batch)
        if self._cfg.qos == 0:  # no receive maximum applies: hold the network thread instead
            limit = self._cfg.inflight + self._cfg.batch_max
            while self._received - self._taken > limit and not self._stop.is_set():
                self._stop.wait(0.05)

    # --- worker -------------------------------------------------------------------------

    def _next_batch(self) -> list[InboundMessage]:
        batch = self._carry
        if not batch:
            try:
                batch = self._queue.get(timeout=0.2)
            except queue.Empty:
                return []
        limit = self._cfg.batch_max
        while len(batch) < limit:
            try:
                batch += self._queue.get_nowait()
            except queue.Empty:
                break
        batch, self._carry = batch[:limit], batch[limit:]
        self._taken += len(batch)
        return batch

    def _work(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if self._on_idle is not None and not self._run_idle():
                return
            if not batch:
                continue
            outcome = self._handle_with_retry(batch)
            if outcome is None:
                return
            self._ack(batch)
            self._count(outcome)

    def _run_idle(self) -> bool:
        """Timed work on the worker thread (it owns the state); False if it failed fatally."""
        assert self._on_idle is not None
        try:
            self._on_idle()
        except Retryable as exc:  # e.g. the store is full: the timed work waits for the next turn
            log.warning("timed rule work postponed: %s", exc)
        except Exception as exc:
            log.critical("fatal error in timed rule work: %r", exc, exc_info=True)
            self.fatal = exc
            self._stop.set()
            return False
        return True

    def _handle_with_retry(self, batch: list[InboundMessage]) -> BatchOutcome | None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                return self._handler(batch)
            except Retryable as exc:
                log.warning("batch of %d not stored (%s); retrying in %.1f s", len(batch), exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
            except Exception as exc:  # Fatal, or a bug the handler could not isolate
                log.critical("fatal error, stopping ingest without acknowledging: %r", exc, exc_info=True)
                self.fatal = exc
                self._stop.set()
        return None

    def _ack(self, batch: list[InboundMessage]) -> None:
        gen = self._generation
        puback: list[int] = []
        for m in batch:
            if not m.qos:
                continue
            if m.generation != gen:  # the broker redelivers it on the new connection
                self.counters["ack_skipped_reconnect"] += 1
            elif m.qos == 1:
                puback.append(m.mid)
            else:
                self._client.ack(m.mid, 2)
                self.counters["acked"] += 1
        self.counters["acked"] += self._client.ack_many(puback)
        if not batch:
            return
        now = datetime.now(UTC)
        # receive → ack, what backpressure and batching cost each message; the messages of one
        # read share their instant, so each run of them is one weighted observation
        run_at, run = batch[0].received_at, 0
        for m in batch:
            if m.received_at is not run_at:
                observe_many(ACK_LATENCY_SECONDS, (now - run_at).total_seconds(), run)
                run_at, run = m.received_at, 0
            run += 1
        observe_many(ACK_LATENCY_SECONDS, (now - run_at).total_seconds(), run)

    def _count(self, outcome: BatchOutcome) -> None:
        self.counters["readings"] += outcome.readings
        self.counters["duplicates"] += outcome.duplicates
        self.counters["incident_changes"] += outcome.changes
        self.counters["cases_queued"] += outcome.cases_queued
        self.counters["dead_letters"] += len(outcome.dead_letters)
        for d in outcome.dead_letters:
            self.dead_letter_reasons[d.reason] += 1
            log.debug("dead letter reason=%s topic=%s detail=%s", d.reason, d.topic, d.detail)
        if self._cfg.publish_deadletters and outcome.dead_letters:
            self._publish_deadletters(outcome.dead_letters)
        self.counters["batches"] += 1

    def _publish_deadletters(self, letters: list[DeadLetter]) -> None:
        """The live feed: the batch's letters, as many as its budget allows (the first ones)."""
        if self._feed_budget is not None:
            admitted = self._feed_budget.admit(len(letters), time.monotonic())
            if admitted < len(letters):
                self.counters["deadletter_feed_suppressed"] += len(letters) - admitted
                letters = letters[:admitted]
        if letters:
            self._client.publish_many_qos0(
                self._scheme.deadletter,
                [_deadletter_json(d, at) for d, at in zip(letters, iso_stamps(letters), strict=True)],
            )

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._cfg.session_expiry_s
            props.ReceiveMaximum = self._cfg.inflight
            self._client.connect_async(
                self._cfg.host,
                self._cfg.port,
                keepalive=self._cfg.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive_s)
        self._client.loop_start()
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self._worker.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backlog(self) -> int:
        return self._received - self._taken

    @property
    def taken(self) -> int:
        """Messages handed to the handler so far, the batch it is handling included."""
        return self._taken

    def stop(self) -> None:
        """Stop taking messages; what is not acknowledged stays on the broker."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def wait_stopped(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return
            self._stop.wait(0.5)

    @property
    def stopping(self) -> threading.Event:
        return self._stop


def _deadletter_json(d: DeadLetter, at: str) -> bytes:
    """The feed's message for one dead letter; ``at`` is its ``at`` in ISO 8601 (``iso_stamps``)."""
    return orjson.dumps(
        {
            "topic": d.topic,
            "reason": d.reason,
            "detail": d.detail,
            "at": at,
            "device_id": d.device_id,
            "payload_b64": base64.b64encode(d.payload[:4096]).decode(),
            "payload_bytes": len(d.payload),
        }
    )
