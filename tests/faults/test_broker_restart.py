"""(a) The broker SIGKILLed and restarted mid-stream, with persistence on (same port, same data).

1. live: the first third of the storm, the pipeline consuming;
2. the pipeline away (SIGKILL): the second third and the bad messages queue on the broker for
   its persistent session; once the broker has saved them, the broker is SIGKILLed and
   restarted: the queue now exists only in its persistence file;
3. the pipeline comes back, finds its session (session_present) and drains the queue; halfway
   through, the broker is SIGKILLed and restarted again, under the connected pipeline, which
   reconnects with backoff and gets what it had not acknowledged redelivered;
4. live again: the last third.

What this does not show: Mosquitto writes its database every autosave_interval seconds (1 s
here, 60 s in deploy/mosquitto), so a SIGKILL loses what the broker accepted since its last
save and had not yet delivered to a subscriber that committed it. The test waits for a save
before the first kill for that reason; a pipeline that keeps up has nothing waiting there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gridsense.embedded_broker import MosquittoBroker, free_port
from simulators.platform import PlatformServer
from tests.faults.harness import (
    BROKER_CONF,
    Feeder,
    PipelineProcess,
    drained,
    setup_scenario,
    tally,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_broker_sigkill_and_restart_lose_nothing(
    mosquitto_factory: Callable[..., MosquittoBroker],
    steady_platform: PlatformServer,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    port, data = free_port(), tmp_path / "broker"
    data.mkdir()

    def broker_up() -> MosquittoBroker:
        return mosquitto_factory(port=port, data_dir=data, extra_conf=BROKER_CONF)

    broker = broker_up()
    # A receive maximum of one: the broker hands the pipeline its queue a message at a time,
    # each after the last one's acknowledgement, so the second kill below lands mid-drain.
    # With the default (1,000) the pipeline took in the whole queue of about 700 messages
    # within one poll of the store, and the kill came after the drain.
    store, config, stream = setup_scenario(tmp_path, port, steady_platform.url, "gs-faults-a", inflight=1)
    live, away, last = (stream.chunks(12, bad_in=5)[i : i + 4] for i in (0, 4, 8))
    n_live, n_away = sum(map(len, live)), sum(map(len, away))

    def handled() -> int:
        return store.readings + sum(store.dead_letters().values())

    pipeline = pipeline_process(config, tmp_path / "pipeline.log")
    pipeline.start()
    Feeder(broker.host, port, live, 0.1, "faults-a-live").run_now()
    wait_for(lambda: handled() >= n_live, 30, "the live part handled")

    pipeline.kill()
    Feeder(broker.host, port, away, 0.0, "faults-a-away").run_now()
    published = time.time()
    persisted = data / "mosquitto.db"
    wait_for(lambda: persisted.exists() and persisted.stat().st_mtime > published + 0.1, 10, "a broker save")
    broker.stop(kill=True)
    broker = broker_up()

    pipeline.start()
    target = n_live + random.Random(3).randint(n_away // 4, n_away // 2)
    wait_for(lambda: handled() >= target, 30, "the queue half drained")
    broker.stop(kill=True)
    at_kill = handled()
    broker = broker_up()

    Feeder(broker.host, port, last, 0.1, "faults-a-last").run_now()
    drained(store, stream)
    pipeline.stop()

    result = tally(
        "a_broker_sigkill",
        "broker SIGKILLed 2x (pipeline away with a queue; pipeline draining it), restarted on its data",
        stream,
        store,
        steady_platform,
        queued_while_away=n_away,
        handled_at_second_kill=at_kill,
        sessions_found_after_restart=pipeline.count("session_present=True"),
    )
    result.check()
    assert at_kill < n_live + n_away, "the second kill came after the queue was drained"
    # Both times the pipeline found its session (and the queue) in the restarted broker.
    assert pipeline.count("mqtt connected") == 3
    assert pipeline.count("session_present=True") == 2
