"""(c) The case platform down, then slow, answering 503s and losing responses, while the pipeline
is SIGKILLed three times (scenario b's fault on top).

The platform goes down as the storm's first incidents are about to open, so their cases queue
in the outbox; the pipeline is killed twice while they wait, the platform comes back slow
and unreliable (30 % of POSTs answered 503, half of the created cases' answers lost after the
case was stored), and the pipeline is killed once more as the first cases get through.
Counted: every case reached the platform exactly once, nothing acknowledged was lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import FaultConfig, PlatformServer
from tests.faults.harness import (
    BROKER_CONF,
    Feeder,
    PipelineProcess,
    drained,
    platform_server,
    setup_scenario,
    tally,
    wait_for,
)

pytestmark = pytest.mark.integration

FAULTS = FaultConfig(error_rate=0.3, slow_s=0.1, lose_response_rate=0.5, seed=1)


@pytest.fixture
def faulty_platform() -> Iterator[PlatformServer]:
    server = platform_server(FAULTS)
    yield server
    server.stop()


def test_platform_outage_errors_and_lost_answers_with_pipeline_kills(
    mosquitto_factory: Callable[..., MosquittoBroker],
    faulty_platform: PlatformServer,
    pipeline_process: Callable[..., PipelineProcess],
    tmp_path: Path,
) -> None:
    platform = faulty_platform
    broker = mosquitto_factory(extra_conf=BROKER_CONF)
    store, config, stream = setup_scenario(tmp_path, broker.port, platform.url, "gs-faults-c")
    n = len(stream.good)
    pipeline = pipeline_process(config, tmp_path / "pipeline.log")
    pipeline.start()
    feeder = Feeder(broker.host, broker.port, stream.chunks(24, bad_in=12), pause_s=0.25, name="faults-c-pub")
    feeder.start()

    wait_for(lambda: store.readings >= 0.4 * n, 30, "40 % of the stream stored")
    platform.set_down(True)
    wait_for(lambda: store.pending > 0, 30, "cases queued while the platform is down")
    pipeline.kill()
    pipeline.start()
    wait_for(lambda: store.readings >= 0.75 * n, 30, "75 % of the stream stored")
    pending_while_down = store.pending
    pipeline.kill()
    pipeline.start()
    assert platform.store.cases() == [], "the platform took a case while down"

    platform.set_down(False)
    wait_for(lambda: len(platform.store.cases()) > 0, 30, "the first case through")
    pipeline.kill()
    pipeline.start()
    feeder.finish()
    drained(store, stream, timeout=90)
    pipeline.stop()

    retries = pipeline.count("delivery retry")
    result = tally(
        "c_platform_faults_and_kills",
        "platform down (2 pipeline kills meanwhile), then slow 0.1 s, 30 % 503, 50 % of create answers lost; "
        "3rd kill as cases got through",
        stream,
        store,
        platform,
        outbox_pending_while_down=pending_while_down,
        delivery_retries=retries,
        retries_platform_down=pipeline.count("platform is down (simulated)"),
        retries_platform_503=pipeline.count("platform busy (simulated error)"),
        retries_answer_lost=pipeline.count("peer closed connection"),
    )
    result.check()
    assert pending_while_down > 0 and retries > 0
