"""SIGKILL the pipeline mid-stream, restart it, and count: nothing acknowledged is lost,
no case is filed twice, and open incidents stay open without being filed again."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gridsense.app import load_registries
from gridsense.config import GridsenseConfig
from gridsense.demo import STORM_GRIDS
from ingest.topics import TopicScheme
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H, expected_grid_levels

pytestmark = pytest.mark.integration


class PipelineProcess:
    """``gridsense run`` as a real child process that can be killed. Each start holds ingest
    until the stage processes are up (``--stages-ready-s``), as an ordered restart would."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gridsense.cli", "run"),
                    *("--stages-ready-s", "60", "--config", str(self.config)),
                ],
                stdout=fh,
                stderr=fh,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            this_run = self.log.read_text(errors="replace")[offset:]
            if "mqtt subscribed" in this_run:
                ready = this_run.find("stage processes ready in")
                assert -1 < ready < this_run.find("mqtt subscribed"), this_run
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError("pipeline did not subscribe:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet
    finally:
        conn.close()


def paced(messages: list[tuple[str, bytes]], handed: list[int], gap_s: float) -> Iterator[tuple[str, bytes]]:
    """Yield ``messages`` one every ``gap_s`` seconds, counting in ``handed[0]`` how many have
    gone to the publisher."""
    for message in messages:
        yield message
        handed[0] += 1
        time.sleep(gap_s)


def test_sigkill_mid_stream_loses_nothing_and_files_nothing_twice(
    mosquitto_factory,
    platform: PlatformServer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    broker = mosquitto_factory()
    store = tmp_path / "state.db"
    cfg_file = tmp_path / "gridsense.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"port": broker.port, "client_id": "gs-crash-test", "batch_max": 25},
                "store": {"path": str(store)},
                "rules": {"file": str(RULES_1H)},
                "bridge": {"url": platform.url, "poll_interval_s": 0.05, "status_poll_s": 60},
            }
        )
    )
    cfg = GridsenseConfig.model_validate(yaml.safe_load(cfg_file.read_text()))
    devices = list(load_registries(cfg).devices)
    start = (datetime.now(UTC) - timedelta(minutes=90)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=90, hit_grids=STORM_GRIDS, seed=11)
    expected = expected_grid_levels(storm, devices, storm.counter_gauges(devices))
    messages = list(
        to_messages(storm.samples(devices), {d.device_id: d for d in devices}, TopicScheme("city"))
    )
    chunks = [messages[i : i + 400] for i in range(0, len(messages), 400)]

    pipeline = PipelineProcess(cfg_file, tmp_path / "pipeline.log")
    pipeline.start()
    rng = random.Random(5)
    kill_points: list[tuple[int, int]] = []  # (readings stored just after the kill, messages sent by then)
    mid_stream = 0
    with MqttPublisher(broker.host, broker.port, "crash-test-pub") as pub, ThreadPoolExecutor(1) as feeder:
        sent = 0
        for chunk in chunks:
            if mid_stream == 3:
                sent += pub.publish(chunk)
                continue
            # The chunk goes out at about a message a millisecond from a second thread, and the
            # kill comes at a random point in it: the pipeline dies while messages are arriving
            # (some in its hands, not yet committed), and the rest of the chunk is queued by the
            # broker for its persistent session until it is back. (Published in one burst, a
            # whole chunk could be stored before the first poll below, and the kill would land
            # between chunks.)
            handed = [0]
            publishing = feeder.submit(pub.publish, paced(chunk, handed, gap_s=0.001))
            target = sent + rng.randint(50, 250)
            deadline = time.monotonic() + 30
            while count(store, "SELECT COUNT(*) FROM readings") < target and time.monotonic() < deadline:
                time.sleep(0.001)
            pipeline.kill()
            stored, published = count(store, "SELECT COUNT(*) FROM readings"), sent + handed[0]
            sent += publishing.result(60)
            kill_points.append((stored, published))
            mid_stream += stored < published
            pipeline.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = count(store, "SELECT COUNT(*) FROM readings") == len(messages)
        if done and count(store, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == 0:
            break
        time.sleep(0.1)
    pipeline.stop()

    assert pipeline.starts == len(kill_points) + 1
    assert mid_stream >= 1, f"no kill landed mid-stream: {kill_points}"
    # Every reading the broker delivered and the pipeline acknowledged is stored, once.
    assert count(store, "SELECT COUNT(*) FROM readings") == len(messages)
    assert count(store, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == 0
    # Exactly one case per grid the oracle names: an incident reopened after a restart would
    # carry a new key, and the platform would hold two cases for that grid.
    cases = [pc.case for pc in platform.store.cases()]
    grids = [c.place.grid_code for c in cases if c.routing_level == "community"]
    assert sorted(grids) == sorted(expected)
    # The storm covers two streets of one district: exactly one district summary; as grids
    # join, its updates carry the growing list of linked cases, ending with all of them.
    summaries = [pc for pc in platform.store.cases() if pc.case.routing_level != "community"]
    assert [pc.case.routing_level for pc in summaries] == ["district"]
    links = [summaries[0].case.linked_cases] + [u.linked_cases for u in summaries[0].updates.values()]
    grid_keys = {c.case_key for c in cases if c.routing_level == "community"}
    assert set(max(links, key=len)) == grid_keys
    assert count(store, "SELECT COUNT(*) FROM incidents") == len(expected) + 1
