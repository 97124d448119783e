"""/metrics, /healthz and /readyz on a running pipeline: numbers that match what really happened."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridsense.embedded_broker import MosquittoBroker
from gridsense.metrics import ACK_LATENCY_SECONDS, METRICS, observe_many, series_names
from gridsense.ops.app import create_ops_app
from gridsense.ops.server import OpsServer
from gridsense.ops.source import AppSource
from simulators.platform import PlatformServer
from tests.ops.pipeline import publish_storm, running_pipeline, wait_for

pytestmark = pytest.mark.integration


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _open_cases(db: sqlite3.Connection) -> int:
    sql = "SELECT COUNT(*) FROM cases WHERE status NOT IN ('结案', '作废', 'rejected')"
    (n,) = db.execute(sql).fetchone()
    return int(n)


def _ack_count() -> float:
    """The process-wide ack-latency histogram's count so far (other tests observe it too)."""
    return next(
        s.value for fam in ACK_LATENCY_SECONDS.collect() for s in fam.samples if s.name.endswith("_count")
    )


def test_metrics_and_readiness_follow_the_live_pipeline(
    mosquitto_factory: Callable[..., MosquittoBroker],
    platform: PlatformServer,
    topic_root: str,
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory()
    with running_pipeline(broker, platform, topic_root, tmp_path) as app:
        server = OpsServer(create_ops_app(AppSource(app))).start()
        try:
            http = httpx.Client(base_url=server.url, timeout=10)
            acks_before = _ack_count()
            sent = publish_storm(app, broker)
            c = app.gateway.counters
            wait_for(
                lambda: c["readings"] + c["duplicates"] + c["dead_letters"] >= sent, what="storm handled"
            )
            wait_for(lambda: app.delivery.depth() == 0, what="outbox drained")
            ACK_LATENCY_SECONDS.observe(0.004)

            db = sqlite3.connect(f"file:{app.cfg.store.path}?mode=ro", uri=True)
            # The platform keeps moving cases on (status sync) while the test reads: cases
            # only close now, so the scrape's count lies between one read before and one after.
            open_before = _open_cases(db)
            m = scrape(http)
            # Nothing locked the store here (tests/ops/test_metrics_families.py maps a count).
            assert m[("gridsense_delivery_store_errors_total", ())] == app.delivery.stats.store_errors == 0
            assert m[("gridsense_messages_received_total", ())] == c["received"] >= sent
            readings = db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
            (newest,) = db.execute("SELECT MAX(ts_ms) FROM readings").fetchone()
            assert m[("gridsense_last_reading_timestamp_seconds", ())] == newest / 1000
            assert m[("gridsense_messages_processed_total", (("outcome", "reading"),))] == readings
            reasons = dict(db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason").fetchall())
            assert reasons, "the storm carries bad messages"
            for reason, n in reasons.items():
                assert m[("gridsense_dead_letters_total", (("reason", reason),))] == n
            assert m[("gridsense_rule_evaluations_total", ())] == readings
            open_inc = db.execute(
                "SELECT category_ref, rule_id, source, COUNT(*) FROM incidents WHERE closed_at IS NULL"
                " GROUP BY category_ref, rule_id, source"
            ).fetchall()
            assert open_inc
            for cat, rule, src, n in open_inc:
                assert (
                    m[("gridsense_incidents_open", (("category", cat), ("rule", rule), ("source", src)))] == n
                )
            cases_open = sum(v for (name, _), v in m.items() if name == "gridsense_cases_open")
            assert _open_cases(db) <= cases_open <= open_before
            assert m[("gridsense_outbox_depth", ())] == 0
            delivered = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").fetchone()[0]
            assert m[("gridsense_delivery_attempts_total", ())] >= delivered > 0
            assert m[("gridsense_mqtt_connected", ())] == 1
            assert m[("gridsense_spool_bytes", ())] == 0  # no spool hook: the SQLite sink has none
            # one observation for each message acknowledged (the gateway weighs runs of them)
            assert m[("gridsense_ack_latency_seconds_count", ())] - acks_before >= sent + 1
            assert m[("gridsense_store_bytes", ())] > 0
            exposed = {name for name, _ in m}
            missing = (
                series_names()
                - exposed
                - {
                    "gridsense_detector_latency_seconds_bucket",  # labelled: no series until observed
                    "gridsense_detector_latency_seconds_sum",
                    "gridsense_detector_latency_seconds_count",
                }
                # labelled by category: no series while no case is open (the platform may
                # already have closed every case the storm filed)
                - ({"gridsense_cases_open"} if cases_open == 0 else set())
            )
            assert not missing, f"families declared in METRICS but not exposed: {sorted(missing)}"
            assert {f.name for f in METRICS} >= {
                n.removesuffix("_total") for n in exposed if n.endswith("_total")
            }
            db.close()

            assert http.get("/healthz").status_code == 200
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text

            # Someone else holds the store's write lock: the outbox is not writable.
            blocker = sqlite3.connect(app.cfg.store.path, isolation_level=None, timeout=30)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["outbox_writable"]["ok"] is False
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert http.get("/readyz").status_code == 200

            # Case delivery's process dies: not ready, with the reason, until the supervisor
            # ('gridsense run' asks it every second) has started it again.
            assert http.get("/readyz").json()["checks"]["case_delivery"]["ok"] is True
            delivered = app.delivery.stats.delivered
            killed = app.delivery
            os.kill(killed.pid, signal.SIGKILL)  # type: ignore[arg-type]
            wait_for(lambda: killed.exitcode is not None, timeout=15, what="the process to end")
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["case_delivery"] == {
                "ok": False,
                "detail": f"stopped (exit code {-signal.SIGKILL}): cases wait in the outbox; see the log",
            }
            wait_for(lambda: app.supervise() or app.delivery is not killed, 15, "the restart")
            # Ready again once the successor is in its loop (``STARTING`` until then).
            wait_for(lambda: http.get("/readyz").status_code == 200, 30, "the successor to be up")
            m = scrape(http)
            assert m[("gridsense_stage_restarts_total", (("stage", "case_delivery"),))] == 1
            # The successor counts on from its predecessor's count.
            assert m[("gridsense_delivery_attempts_total", ())] >= delivered
            assert app.delivery.stats.delivered == delivered

            # The broker goes away: not ready, and the gauge says so.
            broker.stop()
            wait_for(lambda: not app.gateway.connected, timeout=15, what="the pipeline to notice")
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["broker_connected"]["ok"] is False
            assert scrape(http)[("gridsense_mqtt_connected", ())] == 0
            assert http.get("/healthz").status_code == 200  # alive all the same
            http.close()
        finally:
            server.stop()


def test_observe_many_is_count_plain_observations() -> None:
    """The gateway's weighted observation exposes exactly what one ``observe`` per message would."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    def exposition(observe: Callable[[Histogram], None]) -> bytes:
        reg = CollectorRegistry()
        hist = Histogram("ack", "ack latency", buckets=(0.01, 0.1, 1.0), registry=reg)
        observe(hist)
        return b"\n".join(ln for ln in generate_latest(reg).splitlines() if b"_created" not in ln)

    runs = [(0.004, 3), (0.01, 2), (0.5, 7), (2.0, 1), (0.05, 0)]

    def plain(h: Histogram) -> None:
        for amount, count in runs:
            for _ in range(count):
                h.observe(amount)

    def weighted(h: Histogram) -> None:
        for amount, count in runs:
            observe_many(h, amount, count)

    assert exposition(weighted) == exposition(plain)
    assert b"ack_count 13.0" in exposition(weighted)


def test_delivery_counts_reach_their_series() -> None:
    """The delivery process's counts (as ``AppSource.live`` copies them) map onto their series;
    the live test above cannot lock the store for the 30 s busy timeout a store error takes."""
    from gridsense.metrics import _live_families
    from gridsense.ops.source import LiveCounters

    live = LiveCounters(
        connected=True,
        backlog=0,
        delivery={"delivered": 5, "retried": 3, "rejected": 1, "internal_errors": 1, "store_errors": 2},
        breaker_open=True,
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in _live_families(live)
        for s in fam.samples
    }
    assert samples[("gridsense_delivery_store_errors_total", ())] == 2
    assert samples[("gridsense_delivery_attempts_total", ())] == 10
    assert samples[("gridsense_delivery_failures_total", (("reason", "retryable"),))] == 3
    assert samples[("gridsense_delivery_breaker_open", ())] == 1
