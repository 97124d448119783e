"""(g) Case delivery's process SIGKILLed three times while a storm's cases flow; ``gridsense run``
starts it again each time (after 1, 2 and 4 s) and goes on ingesting meanwhile.

Counted: no acknowledged reading lost, every expected case delivered, none filed twice
(a pass sent but not recorded when its process died is sent again, and the platform's
idempotency absorbs the repeat), and the pipeline itself never restarted.
"""

from __future__ import annotations

import os
import re
import signal
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

KILLS = 3
STARTED = re.compile(r"case-delivery process started pid=(\d+)")


def delivery_pids(pipeline: PipelineProcess) -> list[int]:
    return [int(pid) for pid in STARTED.findall(pipeline.text())]


def test_delivery_killed_three_times_is_restarted_and_files_each_case_once(
    mosquitto_factory: Callable[..., MosquittoBroker],
    steady_platform: PlatformServer,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory(extra_conf=BROKER_CONF)
    store, stream, pipeline, feeder = storm_under_way(
        tmp_path, broker, steady_platform.url, pipeline_process, "faults-g"
    )
    pending_at_kill = []
    wait_for(lambda: store.scalar("SELECT COUNT(*) FROM outbox") > 0, 60, "the first case queued")
    for kill in range(KILLS):
        started = partial(lambda n: len(delivery_pids(pipeline)) == n, kill + 1)
        wait_for(started, 30, f"delivery process {kill + 1}")
        pending_at_kill.append(store.pending)
        os.kill(delivery_pids(pipeline)[-1], signal.SIGKILL)
    wait_for(lambda: len(delivery_pids(pipeline)) == KILLS + 1, 30, "the last restart")
    feeder.finish()
    drained(store, stream)
    assert pipeline.proc is not None and pipeline.proc.poll() is None, "the pipeline itself ended"
    pipeline.stop()

    assert pipeline.starts == 1 and pipeline.count("case-delivery process ended on its own") == KILLS
    result = tally(
        "g_delivery_sigkill",
        f"case delivery's process SIGKILLed {KILLS}x while cases flowed, restarted by the pipeline",
        stream,
        store,
        steady_platform,
        outbox_pending_at_kill=pending_at_kill,
    )
    result.check()
    assert store.scalar("SELECT COUNT(*) FROM outbox WHERE op = 'create'") == result.cases_expected
