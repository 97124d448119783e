"""(b) The pipeline SIGKILLed at five random points of one storm, and restarted each time.

The storm is fed in the background, so the kills land while messages are in flight, queued
on the broker, or half committed. Counted: no acknowledged reading lost, no case filed
twice, the incidents open at a kill are restored open after it (and not filed again), every
bad message dead-lettered.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from tests.faults.harness import (
    BROKER_CONF,
    PipelineProcess,
    drained,
    storm_under_way,
    tally,
    wait_for,
)

pytestmark = pytest.mark.integration

KILLS = 5


def test_five_sigkills_lose_nothing_and_file_nothing_twice(
    mosquitto_factory: Callable[..., MosquittoBroker],
    steady_platform: PlatformServer,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory(extra_conf=BROKER_CONF)
    store, stream, pipeline, feeder = storm_under_way(
        tmp_path, broker, steady_platform.url, pipeline_process, "faults-b"
    )
    rng = random.Random(8)
    # Two kills before the storm's incidents open (about minute 45 of 90, half the stream), at
    # a random count of messages published: the pipeline is then busy with the chunk just
    # published, or draining what queued during a restart. Three after, at a random count of
    # readings stored: the incidents are open by then, and the pipeline is mid-batch.
    half = len(stream.good) // 2
    early = sorted(rng.sample(range(100, half), 2))
    late = sorted(rng.sample(range(half + 100, len(stream.good) - 50), 3))
    points: list[tuple[int, int]] = []  # (messages handled, messages acknowledged by the broker)
    restored: list[tuple[int, int]] = []  # (incidents open in the store at the kill, restored open)

    def published(n: int) -> bool:
        return feeder.acked >= n

    def stored(n: int) -> bool:
        return store.readings >= n

    def published_more(than: int) -> bool:
        return feeder.acked > than or not feeder.is_alive()

    for reached, target in [(published, t) for t in early] + [(stored, t) for t in late]:
        wait_for(partial(reached, target), 30, f"{reached.__name__} {target}")
        # Frozen where it stands, while the feeder queues its next chunk on the broker, then
        # killed: a pipeline that keeps up with the feeder is often idle by the time a poll
        # sees the target, and a kill then would leave nothing in flight.
        pipeline.pause()
        wait_for(partial(published_more, feeder.acked), 10, "the feeder's next chunk")
        pipeline.kill()
        points.append((store.readings + sum(store.dead_letters().values()), feeder.acked))
        open_at_kill = store.scalar("SELECT COUNT(*) FROM incidents WHERE closed_at IS NULL")
        pipeline.start()
        restored.append((open_at_kill, pipeline.restored_open_incidents()))
    feeder.finish()
    drained(store, stream)
    pipeline.stop()

    assert pipeline.kills == KILLS and pipeline.starts == KILLS + 1
    behind = [acked - handled for handled, acked in points]
    result = tally(
        "b_pipeline_sigkill",
        f"pipeline SIGKILLed {KILLS}x at random points of the stream, restarted each time",
        stream,
        store,
        steady_platform,
        kill_points=points,
        open_incidents_at_kill_and_restored=restored,
    )
    result.check()
    assert sum(b > 0 for b in behind) >= 2, f"too few kills left messages unprocessed: {points}"
    # Incidents open at a kill are open again after the restart, and none was filed twice:
    # the storm's incidents are all still open, each with exactly one case.
    assert all(at_kill == after for at_kill, after in restored), restored
    assert max(at_kill for at_kill, _ in restored) > 0, "no kill happened while an incident was open"
    assert result.open_incidents == result.cases_expected
    assert store.scalar("SELECT COUNT(*) FROM outbox WHERE op = 'create'") == result.cases_expected
