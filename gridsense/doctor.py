"""``gridsense doctor``: check what the pipeline needs, say what is wrong and how to fix it.

Checks, in order: the ingest hot path is compiled (a warning if it runs as plain Python);
the registries load; the store is writable (the write lock is taken and
given back); the broker accepts a connection and carries a QoS 1 round trip; the platform
answers ``GET /healthz``; clocks.

Clocks: MQTT has no broker time (Mosquitto's ``$SYS`` tree gives uptime, not a clock), so
the broker itself cannot be asked. What matters is checked instead:

- the platform's clock, from the ``Date`` header of its /healthz answer, corrected by half
  the round trip (1 s resolution): deadlines are counted by both sides;
- the devices' clocks, from the readings that pass while the doctor listens on the device
  topics (``listen_s``): a reading stamped in the future means the device clock runs
  ahead; readings older than the lateness limit are dead-lettered by the pipeline;
- the broker round trip (a QoS 1 message to a private topic and back), which bounds how
  exact the device check can be.

Exit status 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridsense.config import GridsenseConfig
from gridsense.errors import GridsenseError

Status = Literal["ok", "warn", "fail"]
#: A clock further off than this is reported.
SKEW_WARN_S = 2.0
LOW_DISK_BYTES = 1 << 30


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str | None = None


def check_build() -> list[Finding]:
    """Whether the modules every reading runs through are compiled (``gridsense.hot_path``).
    pip hides what the build printed, so this is where an installation without a C compiler
    finds out that it runs slower."""
    from gridsense.hot_path import describe, plain_modules

    if not plain_modules():
        return [Finding("build", "ok", f"ingest hot path {describe()}")]
    return [
        Finding(
            "build",
            "warn",
            f"ingest hot path runs as {describe()}: the same behaviour, about a fifth slower a reading",
            "install with `pip install .` (not -e) where gcc and the Python headers are present;"
            " `pip install -v .` shows why a build stayed plain",
        )
    ]


def check_registries(cfg: GridsenseConfig) -> list[Finding]:
    from gridsense.app import load_registries

    try:
        reg = load_registries(cfg)
    except (GridsenseError, OSError) as exc:
        return [Finding("registry", "fail", str(exc), "correct the file and line named above")]
    return [
        Finding(
            "registry",
            "ok",
            f"{len(reg.grids)} grids, {len(reg.devices)} devices, {len(reg.rules.rules)} rules",
        )
    ]


def check_store(cfg: GridsenseConfig) -> list[Finding]:
    path = Path(cfg.store.path)
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.exists():
            return [Finding("store", "fail", f"{parent} does not exist", f"mkdir -p {parent}")]
        if not os.access(parent, os.W_OK | os.X_OK):
            return [
                Finding("store", "fail", f"{parent} is not writable by this user", f"chown or chmod {parent}")
            ]
        return [Finding("store", "ok", f"{path} does not exist yet; it will be created in {parent}")]
    try:
        conn = sqlite3.connect(str(path), timeout=2.0, isolation_level=None)
    except sqlite3.Error as exc:
        return [Finding("store", "fail", f"cannot open {path}: {exc}", "check the path and its permissions")]
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        fix = (
            "another process held the write lock for over 2 s: is a pipeline stuck? (fuser the file)"
            if "locked" in str(exc)
            else f"the file or its folder is not writable: chown/chmod {path} and {path.parent}"
        )
        return [Finding("store", "fail", f"{path}: {exc}", fix)]
    except sqlite3.DatabaseError as exc:
        return [
            Finding(
                "store", "fail", f"{path}: {exc}", "store.path names a file that is not a gridsense store"
            )
        ]
    finally:
        conn.close()
    out = [Finding("store", "ok", f"{path} writable ({mode}, {path.stat().st_size / 1e6:.1f} MB)")]
    free = shutil.disk_usage(path.parent).free
    if free < LOW_DISK_BYTES:
        out.append(
            Finding("store", "warn", f"only {free / 1e9:.2f} GB free next to the store", "free disk space")
        )
    return out


class _Probe:
    """A throwaway MQTT client: connect, round trip, listen to device topics."""

    def __init__(self, cfg: GridsenseConfig) -> None:
        m = cfg.mqtt
        self.cfg = cfg
        proto = mqtt.MQTTv5 if m.protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"gridsense-doctor-{uuid.uuid4().hex[:8]}", protocol=proto
        )
        if m.username is not None:
            self.client.username_pw_set(m.username, m.password.get_secret_value() if m.password else None)
        self.client.connect_timeout = 5.0
        self.connected = threading.Event()
        self.refused: str | None = None
        self.echo = threading.Event()
        self.echo_topic = f"{m.topic_root}/_doctor/{uuid.uuid4().hex}"
        self.samples: list[tuple[str, datetime, datetime]] = []  # device, reading ts, received
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received = datetime.now(UTC)
        if msg.topic == self.echo_topic:
            self.echo.set()
            return
        from ingest.gauge_codec import decode_gauge

        try:
            samples = decode_gauge(bytes(msg.payload), received, timedelta(days=3650))
        except GridsenseError:
            return  # not a gauge reading (camera, asset, junk): nothing to learn about clocks
        for s in samples:
            self.samples.append((s.device_id, s.ts, received))


def check_broker(cfg: GridsenseConfig, listen_s: float = 3.0) -> list[Finding]:
    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    probe = _Probe(cfg)
    try:
        probe.client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        return [Finding("broker", "fail", f"{where}: {exc}", _broker_fix(exc, where))]
    probe.client.loop_start()
    try:
        if not probe.connected.wait(6):
            return [
                Finding(
                    "broker", "fail", f"{where}: no CONNACK within 6 s", "is it an MQTT broker on that port?"
                )
            ]
        if probe.refused is not None:
            return [
                Finding(
                    "broker",
                    "fail",
                    f"{where} refused the connection: {probe.refused}",
                    "check mqtt.username / mqtt.password and the broker's ACL"
                    if "auth" in probe.refused.lower()
                    else f"the broker said {probe.refused}; mqtt.protocol is {m.protocol}",
                )
            ]
        out = [Finding("broker", "ok", f"{where} accepted a connection (MQTT {m.protocol})")]
        probe.client.subscribe(probe.echo_topic, qos=1)
        probe.client.subscribe(f"{m.topic_root}/+/+/+/+", qos=0)
        time.sleep(0.2)
        t0 = time.monotonic()
        probe.client.publish(probe.echo_topic, datetime.now(UTC).isoformat(), qos=1)
        if not probe.echo.wait(5):
            out.append(
                Finding(
                    "broker",
                    "fail",
                    f"a QoS 1 message to {probe.echo_topic} did not come back in 5 s",
                    f"the broker's ACL must let this user publish and subscribe under {m.topic_root}/",
                )
            )
            return out
        rtt = time.monotonic() - t0
        out.append(Finding("broker", "ok" if rtt < 0.5 else "warn", f"QoS 1 round trip {rtt * 1000:.1f} ms"))
        time.sleep(max(0.0, listen_s - (time.monotonic() - t0)))
        out += device_clocks(probe.samples, cfg.rules.lateness_s, listen_s, m.topic_root)
        return out
    finally:
        probe.client.loop_stop()
        probe.client.disconnect()


def _broker_fix(exc: OSError, where: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"nothing listens on {where}: start Mosquitto "
            "(mosquitto -d -c /etc/mosquitto/mosquitto.conf) or fix mqtt.host / mqtt.port"
        )
    if "Name or service not known" in str(exc) or "nodename" in str(exc):
        return "mqtt.host does not resolve: fix the host name (in compose, the service name)"
    return f"check the network path to {where} (firewall, TLS port?)"


def device_clocks(
    samples: list[tuple[str, datetime, datetime]], lateness_s: float, listen_s: float, root: str
) -> list[Finding]:
    """Offsets of device clocks seen in live traffic: ahead (future stamps) or far behind."""
    if not samples:
        return [
            Finding("clock", "ok", f"devices: no gauge readings on {root}/… in {listen_s:g} s; not checked")
        ]
    by_device: dict[str, list[float]] = {}
    for dev, ts, received in samples:
        by_device.setdefault(dev, []).append((ts - received).total_seconds())
    ahead = {d: statistics.median(v) for d, v in by_device.items() if statistics.median(v) > SKEW_WARN_S}
    behind = {d: statistics.median(v) for d, v in by_device.items() if -statistics.median(v) > lateness_s / 2}
    out = []
    if ahead:
        worst = ", ".join(f"{d} +{s:.0f} s" for d, s in sorted(ahead.items(), key=lambda kv: -kv[1])[:5])
        out.append(
            Finding(
                "clock",
                "warn",
                f"{len(ahead)} device(s) stamp readings in the future: {worst}",
                "the device clocks run ahead: point them at NTP; far-future readings are dead-lettered",
            )
        )
    if behind:
        worst = ", ".join(f"{d} {s:.0f} s" for d, s in sorted(behind.items(), key=lambda kv: kv[1])[:5])
        out.append(
            Finding(
                "clock",
                "warn",
                f"{len(behind)} device(s) send readings over half the lateness limit old: {worst}",
                "a replay or a backlog looks like this too; otherwise fix the device clocks (NTP)",
            )
        )
    if not out:
        out.append(
            Finding("clock", "ok", f"devices: {len(by_device)} seen, clocks within {SKEW_WARN_S:g} s ahead")
        )
    return out


def check_platform(cfg: GridsenseConfig, client: httpx.Client | None = None) -> list[Finding]:
    b = cfg.bridge
    url = b.url.rstrip("/") + "/healthz"
    headers = {"Authorization": f"Bearer {b.token.get_secret_value()}"} if b.token else {}
    own = client is None
    http = client or httpx.Client(timeout=min(b.timeout_s, 10.0))
    try:
        t0 = time.time()
        resp = http.get(url, headers=headers)
        t1 = time.time()
    except httpx.HTTPError as exc:
        return [
            Finding(
                "platform", "fail", f"GET {url}: {exc!r}", f"is the platform up at {b.url}? check bridge.url"
            )
        ]
    finally:
        if own:
            http.close()
    out: list[Finding] = []
    if resp.status_code == 200:
        out.append(Finding("platform", "ok", f"GET {url} → 200 in {(t1 - t0) * 1000:.0f} ms"))
    elif resp.status_code in (401, 403):
        out.append(Finding("platform", "fail", f"GET {url} → {resp.status_code}", "check bridge.token"))
    else:
        out.append(
            Finding(
                "platform",
                "fail",
                f"GET {url} → {resp.status_code}",
                "the platform reports trouble; cases wait in the outbox until it recovers",
            )
        )
    out += platform_clock(resp.headers.get("date"), t0, t1)
    return out


def platform_clock(date_header: str | None, sent: float, received: float) -> list[Finding]:
    if not date_header:
        return [Finding("clock", "ok", "platform: no Date header, clock not checked")]
    try:
        theirs = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return [Finding("clock", "warn", f"platform: unreadable Date header {date_header!r}")]
    ours = (sent + received) / 2
    skew = theirs - ours
    # The header has whole seconds: it can read up to 1 s behind even with perfect clocks.
    slack = SKEW_WARN_S + (received - sent) / 2
    if skew > slack or skew < -(slack + 1.0):
        return [
            Finding(
                "clock",
                "warn",
                f"platform clock is {skew:+.1f} s from ours",
                "deadlines are counted on both sides: run NTP (chrony) on both hosts",
            )
        ]
    return [
        Finding(
            "clock", "ok", f"platform clock within {SKEW_WARN_S:g} s of ours ({skew:+.1f} s, 1 s resolution)"
        )
    ]


_MARK = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}


def run_doctor(cfg: GridsenseConfig, out: Callable[[str], None] = print, listen_s: float = 3.0) -> int:
    """Run every check, print findings with fixes; 0 if nothing failed, else 1."""
    findings: list[Finding] = []
    for check in (
        check_build,
        lambda: check_registries(cfg),
        lambda: check_store(cfg),
        lambda: check_broker(cfg, listen_s),
        lambda: check_platform(cfg),
    ):
        for f in check():
            findings.append(f)
            out(f"{_MARK[f.status]} {f.check:<9} {f.message}")
            if f.fix and f.status != "ok":
                out(f"{'':16}fix: {f.fix}")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    out(f"{failed} failed, {warned} warnings" if failed or warned else "all checks passed")
    return 1 if failed else 0
