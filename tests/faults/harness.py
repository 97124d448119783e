"""What every fault scenario shares: the pipeline as a child process that can be killed, the storm
it is fed, and the counting against the simulator's own record.

A scenario builds a ``Stream`` (good readings from the storm simulator, plus the bad messages a
fleet sends), runs ``gridsense run`` as a ``PipelineProcess``, injects its fault while it
publishes, waits with ``drained`` and then calls ``tally`` and ``Tally.check``:

- every reading the simulator sent (and the broker acknowledged) is in the store, once;
- every bad message is in the dead letters, with its reason;
- every case the independent oracle expects reached the platform exactly once: one per grid,
  one district summary, nothing left in the outbox.

``Tally.write`` leaves ``test-artifacts/reliability/<scenario>.json`` for
scripts/reliability_report.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridsense.app import load_registries
from gridsense.config import GridsenseConfig
from gridsense.demo import STORM_GRIDS, bad_messages
from gridsense.embedded_broker import MosquittoBroker
from gridsense.model.registry import Device
from ingest.reading_store import ts_ms
from ingest.topics import TopicScheme
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer, WorkflowConfig
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H, expected_grid_levels, margin

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "reliability"
Message = tuple[str, bytes]

# Appended to the fixture broker's config (which already keeps Mosquitto root when run as
# root, so it can persist into pytest's 0700 folders). autosave_interval 1: the database is
# written every second (production: 60 s, see deploy/mosquitto/mosquitto.conf), so a
# scenario can wait for a save before a SIGKILL.
BROKER_CONF = "autosave_interval 1\n"
# What demo.bad_messages sends, by the reason each must be dead-lettered with.
BAD_REASONS = Counter(
    {"malformed": 1, "negative_rain": 1, "device_mismatch": 1, "unknown_device": 1, "schema": 1}
)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- the stream ---------------------------------------------------------------------------


@dataclass
class Stream:
    """A 90-minute storm over the demo registry, replayed at its own (data) timestamps."""

    storm: StormScenario
    good: list[Message]
    bad: list[Message]
    expected: dict[str, str]  # grid -> highest level, from the independent oracle
    keys: set[tuple[str, int]]  # (device, ts_ms) of every good reading: the simulator's record
    bad_reasons: Counter[str] = field(default_factory=lambda: Counter(BAD_REASONS))

    @property
    def sent(self) -> int:
        return len(self.good) + len(self.bad)

    def chunks(self, n: int, bad_in: int | None = None) -> list[list[Message]]:
        """The good messages in ``n`` consecutive chunks; the bad ones appended to chunk ``bad_in``."""
        size = -(-len(self.good) // n)
        out = [self.good[i : i + size] for i in range(0, len(self.good), size)]
        if bad_in is not None:
            out[bad_in] = out[bad_in] + self.bad
        return out


def make_stream(devices: list[Device], minutes: int = 90, seed: int = 11) -> Stream:
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=minutes, hit_grids=STORM_GRIDS, seed=seed)
    counters = storm.counter_gauges(devices)
    assert margin(storm, devices, counters) > 0.05, "storm too close to a threshold for an exact oracle"
    scheme = TopicScheme("city")
    samples = list(storm.samples(devices))
    good = list(to_messages(iter(samples), {d.device_id: d for d in devices}, scheme))
    keys = {(s.device_id, ts_ms(s.ts)) for s in samples}
    assert len(keys) == len(good)
    expected = expected_grid_levels(storm, devices, counters)
    return Stream(storm, good, bad_messages(scheme), expected, keys)


def platform_server(faults: FaultConfig | None = None) -> PlatformServer:
    """The reference platform with cases that stay at 立案 for the whole test.

    A case the platform closes while its incident is still active gets a linked follow-up
    case by design (bridge/status_sync.py); a fast workflow would mix those into the
    exactly-once count.
    """
    config = PlatformConfig(
        workflow=WorkflowConfig(step_delay_s=(3600.0, 3600.0)), faults=faults or FaultConfig()
    )
    return PlatformServer(config).start()


class Feeder(threading.Thread):
    """Publishes chunks with a pause between them, as a fleet reports over time, in the background.

    ``acked`` counts the messages the broker has acknowledged so far.
    """

    def __init__(self, host: str, port: int, chunks: list[list[Message]], pause_s: float, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.host, self.port, self.chunks, self.pause_s = host, port, chunks, pause_s
        self.acked = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with MqttPublisher(self.host, self.port, self.name, window=200) as pub:
                for chunk in self.chunks:
                    self.acked += pub.publish(chunk)
                    time.sleep(self.pause_s)
        except BaseException as exc:  # handed to the test thread by finish()
            self.error = exc

    def run_now(self) -> int:
        """Publish everything in this thread and return the count."""
        self.run()
        if self.error is not None:
            raise self.error
        return self.acked

    def finish(self, timeout: float = 60) -> int:
        self.join(timeout)
        assert not self.is_alive(), "the feeder did not finish"
        if self.error is not None:
            raise self.error
        return self.acked


# --- the pipeline as a child process ------------------------------------------------------


def write_config(
    path: Path, broker_port: int, platform_url: str, store: Path, client_id: str, inflight: int | None = None
) -> Path:
    """A pipeline config for the child: small batches (kills land mid-stream), quick retries;
    ``inflight``, the receive maximum, when a scenario needs the broker to hand over its
    queue a few messages at a time."""
    mqtt: dict[str, object] = {"inflight": inflight} if inflight else {}
    cfg = {
        "mqtt": {
            "port": broker_port,
            "client_id": client_id,
            "batch_max": 25,
            "reconnect_min_s": 1,
            "reconnect_max_s": 2,
            **mqtt,
        },
        "store": {"path": str(store)},
        "rules": {"file": str(RULES_1H)},
        "bridge": {
            "url": platform_url,
            "poll_interval_s": 0.05,
            "status_poll_s": 60,
            "backoff_initial_s": 0.1,
            "backoff_max_s": 1.0,
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def demo_devices(config: Path) -> list[Device]:
    return list(load_registries(GridsenseConfig.model_validate(yaml.safe_load(config.read_text()))).devices)


def setup_scenario(
    tmp_path: Path, broker_port: int, platform_url: str, client_id: str, inflight: int | None = None
) -> tuple[Store, Path, Stream]:
    """Every scenario's start: a store, a pipeline config for the child, and the storm stream."""
    store = Store(tmp_path / "state.db")
    config = write_config(
        tmp_path / "gridsense.yaml", broker_port, platform_url, store.path, client_id, inflight
    )
    return store, config, make_stream(demo_devices(config))


def storm_under_way(
    tmp_path: Path,
    broker: MosquittoBroker,
    platform_url: str,
    pipeline_process: Callable[..., PipelineProcess],
    name: str,
) -> tuple[Store, Stream, PipelineProcess, Feeder]:
    """A pipeline child running, and the storm fed to it in the background (24 chunks, the
    bad messages in the 12th, a quarter second apart), so faults land mid-stream."""
    store, config, stream = setup_scenario(tmp_path, broker.port, platform_url, f"gs-{name}")
    pipeline = pipeline_process(config, tmp_path / "pipeline.log")
    pipeline.start()
    feeder = Feeder(broker.host, broker.port, stream.chunks(24, bad_in=12), pause_s=0.25, name=f"{name}-pub")
    feeder.start()
    return store, stream, pipeline, feeder


def faketime_env(spec_file: Path) -> dict[str, str]:
    """Environment that runs a child under libfaketime, its wall clock set by ``spec_file``.

    Writing ``+2h`` (or ``-2h``, ``+0``) to the file steps the child's wall clock within a
    second, as an NTP step would. CLOCK_MONOTONIC is left alone, as a real step leaves it:
    faking it too hangs Python's timed waits (sem_clockwait is not intercepted).
    """
    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1")) + sorted(
        Path("/usr/lib/faketime").glob("libfaketimeMT.so.1")
    )
    if not libs:
        pytest.fail(
            "libfaketime is not installed (Debian: apt-get install faketime); the clock test needs it"
        )
    return {
        "LD_PRELOAD": str(libs[0]),
        "FAKETIME_TIMESTAMP_FILE": str(spec_file),
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


class PipelineProcess:
    """``gridsense run`` as a real child process: started, SIGKILLed, restarted, counted."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.log, self.env = config, log, env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = self.kills = 0

    def start(self, wait_connected: bool = True) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridsense.cli", "run", "--config", str(self.config)],
                stdout=fh,
                stderr=fh,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        self.starts += 1
        if wait_connected:
            wait_for(
                lambda: self._subscribed_since(offset),
                30,
                "the pipeline to connect and subscribe\n" + self.text(),
            )

    def _subscribed_since(self, offset: int) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, "the pipeline exited:\n" + self.text()
        return "mqtt subscribed" in self.text()[offset:]

    def pause(self) -> None:
        """Freeze it where it is (SIGSTOP): mid-batch, mid-commit or idle; ``kill`` still works."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def restored_open_incidents(self) -> int:
        """Open incidents the last start restored from the store (its ``state restored`` line)."""
        line = [ln for ln in self.text().splitlines() if "state restored:" in ln][-1]
        return int(line.rsplit(" incidents open", 1)[0].rsplit(" ", 1)[-1])

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def count(self, needle: str) -> int:
        return self.text().count(needle)


# --- counting -----------------------------------------------------------------------------


class Store:
    """Read-only counts from the pipeline's SQLite file (zero until the schema exists)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def scalar(self, sql: str) -> int:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    @property
    def readings(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM readings")

    @property
    def pending(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")

    def dead_letters(self) -> Counter[str]:
        return Counter(dict(self.rows("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason")))


def drained(store: Store, stream: Stream, timeout: float = 60) -> None:
    """Wait until every message has an outcome in the store and the outbox is empty."""

    def done() -> bool:
        outcomes = store.readings + sum(store.dead_letters().values())
        return outcomes >= stream.sent and store.pending == 0

    wait_for(done, timeout, "every message handled and the outbox drained")


@dataclass
class Tally:
    """One scenario's outcome, counted against the simulator's record."""

    scenario: str
    injected: str
    sent: int
    good_sent: int
    stored: int
    missing_readings: int  # sent and acknowledged by the broker, not in the store
    bad_sent: int
    dead_lettered: int
    dead_letter_reasons: dict[str, int]
    expected_reasons: dict[str, int]
    cases_expected: int
    cases_delivered: int
    duplicates: int
    lost_messages: int  # readings missing from the store + bad messages missing from the dead letters
    lost_cases: int
    extra_cases: int
    outbox_pending: int
    outbox_rejected: int
    open_incidents: int
    notes: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        assert self.missing_readings == 0, f"{self.missing_readings} acknowledged readings lost"
        assert self.stored == self.good_sent, "readings stored that the simulator never sent"
        assert self.dead_letter_reasons == self.expected_reasons, self.dead_letter_reasons
        assert self.lost_messages == 0
        assert (self.duplicates, self.lost_cases, self.extra_cases) == (0, 0, 0), self
        assert self.cases_delivered == self.cases_expected
        assert (self.outbox_pending, self.outbox_rejected) == (0, 0)

    def write(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")
        return path


def tally(
    scenario: str, injected: str, stream: Stream, store: Store, platform: PlatformServer, **notes: Any
) -> Tally:
    grids = Counter(
        pc.case.place.grid_code for pc in platform.store.cases() if pc.case.routing_level == "community"
    )
    summaries = [pc for pc in platform.store.cases() if pc.case.routing_level != "community"]
    expected = set(stream.expected)
    # One district summary: the storm grids lie in two streets of one district (see test_storm_to_case).
    lost_cases = len(expected - set(grids)) + (0 if summaries else 1)
    reasons = store.dead_letters()
    stored = store.readings
    stored_keys = set(store.rows("SELECT device_id, ts_ms FROM readings"))
    t = Tally(
        scenario=scenario,
        injected=injected,
        sent=stream.sent,
        good_sent=len(stream.good),
        stored=stored,
        missing_readings=len(stream.keys - stored_keys),
        bad_sent=len(stream.bad),
        dead_lettered=sum(reasons.values()),
        dead_letter_reasons=dict(reasons),
        expected_reasons=dict(stream.bad_reasons),
        cases_expected=len(expected) + 1,
        cases_delivered=sum(grids.values()) + len(summaries),
        duplicates=sum(n - 1 for n in grids.values()) + max(0, len(summaries) - 1),
        lost_messages=len(stream.keys - stored_keys) + sum((stream.bad_reasons - reasons).values()),
        lost_cases=lost_cases,
        extra_cases=len(set(grids) - expected),
        outbox_pending=store.pending,
        outbox_rejected=store.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'rejected'"),
        open_incidents=store.scalar("SELECT COUNT(*) FROM incidents WHERE closed_at IS NULL"),
        notes=notes,
    )
    t.write()
    return t
