"""Prometheus metrics: read from the live pipeline at scrape time, nothing added to the hot path.

``PipelineCollector`` turns an ``OpsSource`` (the running App's counters, and its store
read through a read-only connection) into metric families when Prometheus scrapes. The two
latency histograms are the exception: they must be observed where the time is spent, so
they are plain ``Histogram`` objects the gateway and the detectors can ``observe``.

Names follow the Prometheus conventions: ``gridsense_`` prefix, base units (seconds,
bytes), ``_total`` on counters. ``METRICS`` lists every family; dashboards are tested
against it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gridsense.ops.incidents import open_incidents_sql
from gridsense.ops.source import LiveCounters, OpsSource
from ingest.reading_store import newest_ms
from ingest.spool import spool_depth

log = logging.getLogger("gridsense.metrics")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # without the _total a counter's samples carry
    type: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()

    def series(self) -> tuple[str, ...]:
        """The sample names this family exposes (what a PromQL query may name)."""
        if self.type == "counter":
            return (f"{self.name}_total",)
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


METRICS: tuple[MetricSpec, ...] = (
    # --- ingest (the gateway's counters) --------------------------------------------------
    MetricSpec("gridsense_messages_received", "counter", "MQTT messages taken off the broker"),
    MetricSpec(
        "gridsense_messages_processed",
        "counter",
        "Messages whose outcome was committed, by outcome: reading stored, duplicate, dead letter",
        ("outcome",),
    ),
    MetricSpec("gridsense_dead_letters", "counter", "Messages dead-lettered, by reason", ("reason",)),
    MetricSpec(
        "gridsense_deadletter_feed_suppressed",
        "counter",
        "Dead letters left off the live feed over its rate (mqtt.deadletter_feed_per_s); each is stored",
    ),
    MetricSpec("gridsense_batches", "counter", "Batches committed by the ingest worker"),
    MetricSpec("gridsense_mqtt_acks", "counter", "MQTT acknowledgements sent after commit"),
    MetricSpec("gridsense_mqtt_connects", "counter", "Successful MQTT (re)connections"),
    MetricSpec("gridsense_mqtt_disconnects", "counter", "Unexpected MQTT disconnections"),
    MetricSpec("gridsense_mqtt_connected", "gauge", "1 while connected to the broker"),
    MetricSpec("gridsense_ingest_backlog_messages", "gauge", "Messages received and not yet handled"),
    MetricSpec(
        "gridsense_ingest_stopped", "gauge", "1 when ingest stopped on a fatal error (restart needed)"
    ),
    # --- rules --------------------------------------------------------------------------
    MetricSpec(
        "gridsense_rule_evaluations",
        "counter",
        "Readings evaluated against the rule set (each stored reading once, all rules of its kind)",
    ),
    MetricSpec(
        "gridsense_incident_changes", "counter", "Incident changes (opened, raised, updated, cleared)"
    ),
    MetricSpec(
        "gridsense_incidents_open",
        "gauge",
        "Open incidents of every stage (rules, cameras, assets) by case category, rule and source",
        ("category", "rule", "source"),
    ),
    MetricSpec(
        "gridsense_last_reading_timestamp_seconds", "gauge", "Time stamp of the newest stored reading"
    ),
    # --- bridge -------------------------------------------------------------------------
    MetricSpec("gridsense_cases_queued", "counter", "Cases and case updates queued in the outbox"),
    MetricSpec(
        "gridsense_cases_open",
        "gauge",
        "Cases the platform has not closed or voided, by case category and source",
        ("category", "source"),
    ),
    MetricSpec("gridsense_outbox_depth", "gauge", "Outbox messages waiting for delivery"),
    MetricSpec(
        "gridsense_outbox_rejected", "gauge", "Outbox messages the platform rejected (need an operator)"
    ),
    MetricSpec(
        "gridsense_outbox_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest message waiting in the outbox (0 when empty)",
    ),
    MetricSpec(
        "gridsense_delivery_attempts", "counter", "Attempts to deliver an outbox message to the platform"
    ),
    MetricSpec(
        "gridsense_delivery_failures",
        "counter",
        "Failed delivery attempts: retryable (will be retried), rejected, internal_error",
        ("reason",),
    ),
    MetricSpec(
        "gridsense_delivery_breaker_open", "gauge", "1 while the circuit breaker holds deliveries back"
    ),
    MetricSpec("gridsense_status_poll_errors", "counter", "Case status polls that failed"),
    MetricSpec(
        "gridsense_delivery_store_errors",
        "counter",
        "Delivery passes that found the outbox's store locked or full past its busy timeout (waited out)",
    ),
    MetricSpec(
        "gridsense_stage_restarts",
        "counter",
        "Stage processes (case_delivery, influx_forwarder) started again after ending on their own",
        ("stage",),
    ),
    # --- storage ------------------------------------------------------------------------
    MetricSpec("gridsense_store_bytes", "gauge", "Size of the SQLite state store (database and WAL files)"),
    MetricSpec(
        "gridsense_spool_bytes",
        "gauge",
        "Size of the local InfluxDB spool in bytes, when the pipeline reports it (else 0)",
    ),
    MetricSpec("gridsense_spool_rows", "gauge", "Readings waiting in the local InfluxDB spool"),
    MetricSpec("gridsense_store_readable", "gauge", "1 if the last scrape could read the state store"),
    # --- latency (observed in place) ------------------------------------------------------
    MetricSpec(
        "gridsense_detector_latency_seconds", "histogram", "Time a detector takes on one frame", ("detector",)
    ),
    MetricSpec(
        "gridsense_ack_latency_seconds",
        "histogram",
        "Time from taking a message off the broker to acknowledging it (commit included)",
    ),
)
SPECS = {m.name: m for m in METRICS}


def series_names() -> frozenset[str]:
    """Every sample name gridsense exposes."""
    return frozenset(s for m in METRICS for s in m.series())


def _histogram(name: str, buckets: tuple[float, ...]) -> Histogram:
    spec = SPECS[name]
    # registry=None: registered per exposition registry (``metrics_registry``), not globally.
    return Histogram(
        name.removesuffix("_seconds"), spec.help, spec.labels, unit="seconds", buckets=buckets, registry=None
    )


#: Observe with ``DETECTOR_LATENCY_SECONDS.labels(detector="rubbish").observe(seconds)``.
DETECTOR_LATENCY_SECONDS = _histogram(
    "gridsense_detector_latency_seconds", (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
)
#: Observed in the gateway for each acknowledged message: ack time - ``message.received_at``
#: (with ``observe_many`` for the messages of one read, which share their arrival).
ACK_LATENCY_SECONDS = _histogram(
    "gridsense_ack_latency_seconds", (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
)


def observe_many(hist: Histogram, amount: float, count: int) -> None:
    """``hist.observe(amount)`` ``count`` times, in one step.

    prometheus_client has no weighted observation, and one ``observe`` takes two locks and
    a bucket search: a few microseconds for each acknowledged message. This does what
    ``Histogram.observe`` does, once, through the same value objects; where a release has
    changed those internals it falls back to observing one by one. A test holds the
    exposition equal to ``count`` plain observations.
    """
    try:
        total, buckets, bounds = hist._sum, hist._buckets, hist._upper_bounds
    except AttributeError:
        for _ in range(count):
            hist.observe(amount)
        return
    hist._raise_if_not_observable()
    total.inc(amount * count)
    for i, bound in enumerate(bounds):
        if amount <= bound:
            buckets[i].inc(count)
            break


class PipelineCollector(Collector):
    """Builds the families from the source at scrape time."""

    def __init__(self, source: OpsSource) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked collector: families depend on what the source can tell

    def collect(self) -> Iterator[Metric]:
        live = self._source.live()
        if live is not None:
            yield from _live_families(live)
        yield from self._store_families()

    def _store_families(self) -> Iterator[Metric]:
        readable = _gauge("gridsense_store_readable")
        size = _gauge("gridsense_store_bytes")
        path = self._source.store_path
        size.add_metric([], float(sum(_size(f"{path}{suffix}") for suffix in ("", "-wal", "-shm"))))
        yield size
        try:
            with self._source.read() as conn:
                incidents = conn.execute(
                    f"SELECT category_ref, rule_id, source, COUNT(*) FROM ({open_incidents_sql(conn)})"
                    " GROUP BY category_ref, rule_id, source"
                ).fetchall()
                pending, oldest = conn.execute(
                    "SELECT COUNT(*), MIN(created_ms) FROM outbox WHERE status = 'pending'"
                ).fetchone()
                (rejected,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'rejected'").fetchone()
                open_cases = conn.execute(
                    "SELECT c.category_code, coalesce(json_extract(o.body, '$.source'), 'unknown'), COUNT(*)"
                    " FROM cases c LEFT JOIN outbox o ON o.message_key = c.case_key"
                    " WHERE c.status NOT IN ('结案', '作废', 'rejected') GROUP BY 1, 2"
                ).fetchall()
                newest = newest_ms(conn)
                spool = _spool_rows(conn)
        except Exception as exc:  # a scrape must answer even when the store cannot be read
            log.warning("metrics: state store not readable: %s", exc)
            readable.add_metric([], 0.0)
            yield readable
            return
        readable.add_metric([], 1.0)
        yield readable
        inc = _gauge("gridsense_incidents_open")
        for category, rule, source, n in incidents:
            inc.add_metric([category, rule, source], float(n))
        yield inc
        yield _gauge("gridsense_outbox_depth", float(pending))
        yield _gauge("gridsense_outbox_rejected", float(rejected))
        age = max(0.0, time.time() - oldest / 1000) if oldest is not None else 0.0
        yield _gauge("gridsense_outbox_oldest_pending_age_seconds", age)
        cases = _gauge("gridsense_cases_open")
        for category, source, n in open_cases:
            cases.add_metric([category, source], float(n))
        yield cases
        if newest is not None:
            yield _gauge("gridsense_last_reading_timestamp_seconds", newest / 1000)
        if spool is not None:
            yield _gauge("gridsense_spool_rows", float(spool))


def _spool_rows(conn: sqlite3.Connection) -> int | None:
    """Readings in the InfluxDB spool (None without one), read in O(1) (``spool_depth``)."""
    if (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'influx_spool_batches'"
        ).fetchone()
        is None
    ):
        return None
    return spool_depth(conn)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    spec = SPECS[name]
    fam = GaugeMetricFamily(name, spec.help, labels=spec.labels if value is None else None)
    if value is not None:
        fam.add_metric([], value)
    return fam


def _counter(name: str, value: float | None = None) -> CounterMetricFamily:
    spec = SPECS[name]
    fam = CounterMetricFamily(name, spec.help, labels=spec.labels if value is None else None)
    if value is not None:
        fam.add_metric([], value)
    return fam


def _live_families(live: LiveCounters) -> Iterator[Metric]:
    g, d = live.gateway, live.delivery
    yield _counter("gridsense_messages_received", g.get("received", 0))
    processed = _counter("gridsense_messages_processed")
    for outcome, key in (
        ("reading", "readings"),
        ("duplicate", "duplicates"),
        ("dead_letter", "dead_letters"),
    ):
        processed.add_metric([outcome], g.get(key, 0))
    yield processed
    dead = _counter("gridsense_dead_letters")
    for reason, n in sorted(live.dead_letter_reasons.items()):
        dead.add_metric([reason], n)
    yield dead
    yield _counter("gridsense_deadletter_feed_suppressed", g.get("deadletter_feed_suppressed", 0))
    yield _counter("gridsense_batches", g.get("batches", 0))
    yield _counter("gridsense_mqtt_acks", g.get("acked", 0))
    yield _counter("gridsense_mqtt_connects", g.get("connects", 0))
    yield _counter("gridsense_mqtt_disconnects", g.get("disconnects", 0))
    yield _gauge("gridsense_mqtt_connected", float(live.connected))
    yield _gauge("gridsense_ingest_backlog_messages", float(live.backlog))
    yield _gauge("gridsense_ingest_stopped", float(live.fatal is not None))
    yield _counter("gridsense_rule_evaluations", g.get("readings", 0))
    yield _counter("gridsense_incident_changes", g.get("incident_changes", 0))
    yield _counter("gridsense_cases_queued", g.get("cases_queued", 0))
    failures = {
        "retryable": d.get("retried", 0),
        "rejected": d.get("rejected", 0),
        "internal_error": d.get("internal_errors", 0),
    }
    yield _counter("gridsense_delivery_attempts", d.get("delivered", 0) + sum(failures.values()))
    fail = _counter("gridsense_delivery_failures")
    for reason, n in failures.items():
        fail.add_metric([reason], n)
    yield fail
    yield _gauge("gridsense_delivery_breaker_open", float(live.breaker_open))
    yield _counter("gridsense_status_poll_errors", d.get("status_errors", 0))
    yield _counter("gridsense_delivery_store_errors", d.get("store_errors", 0))
    restarts = _counter("gridsense_stage_restarts")
    for stage, n in sorted(live.restarts.items()):
        restarts.add_metric([stage], n)
    yield restarts
    yield _gauge("gridsense_spool_bytes", float(live.spool_bytes))


def metrics_registry(source: OpsSource) -> CollectorRegistry:
    """A registry with the collector over ``source`` and the two latency histograms."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector(source))
    reg.register(DETECTOR_LATENCY_SECONDS)
    reg.register(ACK_LATENCY_SECONDS)
    return reg
