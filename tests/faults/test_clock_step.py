"""(d) The pipeline host's wall clock stepped mid-stream: +2 h after the first third of the storm,
then back to -2 h (a 4 h step backwards) after the second, under libfaketime.

The storm's incidents open in its second third (minute 43 on: pipeline clock +2 h) and rise
to orange and red in the last (clock -2 h).

What it shows, exactly:
- the steps happened inside the pipeline: a probe message dead-lettered after each step is
  stamped (dead_letters.at, the pipeline's own clock) 2 h ahead, then 2 h behind;
- rule windows run on data time: the grids that get a case and the highest level each
  reached are the independent oracle's, which knows nothing of the pipeline's clock;
- a case's filed_at is the data time of the reading that opened its incident (inside the
  storm, not shifted by the step) and its deadline is still filed_at + the category's limit
  (道路积水: 2 clock hours);
- nothing is lost, nothing filed twice (the common counting).

What it does not show: timers that read the wall clock (the outbox's retry schedule, the
quiet-incident and staleness checks in RuleEngine.tick) under a step while they are waiting:
here the platform is healthy, so no delivery is ever scheduled for later, and no incident
goes quiet during the storm.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense.embedded_broker import MosquittoBroker
from gridsense.model.envelopes import Kind
from ingest.topics import TopicScheme
from simulators.platform import PlatformServer
from tests.e2e.oracle import THRESHOLDS
from tests.faults.harness import (
    BROKER_CONF,
    Feeder,
    PipelineProcess,
    drained,
    faketime_env,
    setup_scenario,
    tally,
    wait_for,
)

pytestmark = pytest.mark.integration

RANK = {name: i for i, (name, _) in enumerate(THRESHOLDS)}
PROBE_DEVICE, PROBE_GRID = "rg-012002001-1", "110102012002001"


def step_clock(clock_file: Path, spec: str) -> None:
    """Set the child's clock offset and wait until libfaketime has reread it."""
    tmp = clock_file.with_suffix(".new")
    tmp.write_text(spec + "\n")
    tmp.replace(clock_file)  # atomic: libfaketime never reads a half-written file
    # It rereads once more than FAKETIME_CACHE_DURATION (1) whole seconds have passed: < 3 s.
    time.sleep(3.5)


@pytest.fixture
def clock_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "faketime.rc"
    path.write_text("+0\n")
    yield path


def test_clock_steps_change_no_window_case_or_deadline(
    mosquitto_factory: Callable[..., MosquittoBroker],
    steady_platform: PlatformServer,
    clock_file: Path,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory(extra_conf=BROKER_CONF)
    store, config, stream = setup_scenario(tmp_path, broker.port, steady_platform.url, "gs-faults-d")
    probe_topic = TopicScheme("city").topic(PROBE_GRID, Kind.RAIN, PROBE_DEVICE)
    stream.bad_reasons["malformed"] += 2  # the two clock probes
    stream.bad.extend([(probe_topic, b"clock probe 1"), (probe_topic, b"clock probe 2")])
    first, second, third = (stream.chunks(9)[i : i + 3] for i in (0, 3, 6))
    third[-1] = third[-1] + stream.bad[:-2]

    def handled() -> int:
        return store.readings + sum(store.dead_letters().values())

    def step_and_probe(spec: str, probe: bytes) -> timedelta:
        """Step the pipeline's clock; return its offset, read from the probe's dead letter."""
        step_clock(clock_file, spec)
        Feeder(broker.host, broker.port, [[(probe_topic, probe)]], 0, "faults-d-probe").run_now()
        sql = f"SELECT at FROM dead_letters WHERE payload = X'{probe.hex()}'"
        wait_for(lambda: bool(store.rows(sql)), 10, "the probe dead-lettered")
        return datetime.fromisoformat(store.rows(sql)[0][0]) - datetime.now(UTC)

    pipeline = pipeline_process(config, tmp_path / "pipeline.log", env=faketime_env(clock_file))
    pipeline.start()
    sent = Feeder(broker.host, broker.port, first, 0.1, "faults-d-1").run_now()
    wait_for(lambda: handled() >= sent, 30, "the first third handled")
    ahead = step_and_probe("+2h", b"clock probe 1")
    sent += 1 + Feeder(broker.host, broker.port, second, 0.1, "faults-d-2").run_now()
    wait_for(lambda: handled() >= sent, 30, "the second third handled")
    behind = step_and_probe("-2h", b"clock probe 2")
    Feeder(broker.host, broker.port, third, 0.1, "faults-d-3").run_now()
    drained(store, stream)
    pipeline.stop()

    result = tally(
        "d_clock_step",
        "pipeline wall clock stepped +2 h, then -4 h (to -2 h) mid-stream (libfaketime)",
        stream,
        store,
        steady_platform,
        clock_offset_after_first_step_s=round(ahead.total_seconds()),
        clock_offset_after_second_step_s=round(behind.total_seconds()),
    )
    result.check()
    assert abs(ahead - timedelta(hours=2)) < timedelta(minutes=5), ahead
    assert abs(behind + timedelta(hours=2)) < timedelta(minutes=5), behind

    storm_start = stream.storm.start
    storm_end = storm_start + timedelta(minutes=stream.storm.minutes)
    for pc in steady_platform.store.cases():
        case = pc.case
        assert storm_start <= case.filed_at <= storm_end, f"filed_at {case.filed_at} is not data time"
        assert case.deadline - case.filed_at == timedelta(hours=2)
        if case.routing_level == "community":
            reached = [
                lv for lv in [case.warning_level, *(u.warning_level for u in pc.updates.values())] if lv
            ]
            assert max(reached, key=RANK.__getitem__) == stream.expected[case.place.grid_code]


def test_backward_step_does_not_strand_a_waiting_retry(
    mosquitto_factory: Callable[..., MosquittoBroker],
    steady_platform: PlatformServer,
    clock_file: Path,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory(extra_conf=BROKER_CONF)
    store, config, stream = setup_scenario(tmp_path, broker.port, steady_platform.url, "gs-faults-d2")
    clock_file.write_text("+2h\n")
    pipeline = pipeline_process(config, tmp_path / "pipeline.log", env=faketime_env(clock_file))
    pipeline.start()
    steady_platform.set_down(True)
    Feeder(broker.host, broker.port, stream.chunks(9)[:6], 0, "faults-d2").run_now()
    wait_for(
        lambda: store.pending > 0 and pipeline.count("delivery retry") > 0, 30, "a case waiting to retry"
    )
    step_clock(clock_file, "-2h")
    steady_platform.set_down(False)
    try:
        wait_for(lambda: store.pending == 0, 10, "the waiting cases delivered after the platform came back")
    finally:
        pipeline.stop()
