"""The benchmark's own tools do what the figures assume: the raw-socket load generator
delivers every message, intact and stamped, and the platform runs in its own process."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from gridsense.embedded_broker import MosquittoBroker
from tests.fixtures.mosquitto import subscribed

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from platform_process import platform_process  # noqa: E402


@pytest.mark.parametrize("qos", [1, 0])
def test_flood_delivers_every_message_intact_and_stamped(
    mosquitto: MosquittoBroker, topic_root: str, tmp_path: Path, qos: int
) -> None:
    lines = []
    for i in range(500):
        doc: object = (
            {"device_id": f"rg-{i}", "ts": "2026-01-01T00:00:00+00:00", "rain_mm": i / 10}
            if i % 2
            else [{"bn": f"urn:dev:rg-{i}:", "bt": 0, "n": "rain", "u": "mm", "v": i / 10}]
        )
        lines.append(f"{topic_root}/d{i % 13}".encode() + b"\t" + orjson.dumps(doc))
    file = tmp_path / "msgs.txt"
    file.write_bytes(b"\n".join(lines) + b"\n")
    with subscribed(mosquitto, f"{topic_root}/#") as sub:
        before = time.time()
        cmd = [sys.executable, str(BENCH / "flood.py"), mosquitto.host, str(mosquitto.port), str(file)]
        subprocess.run([*cmd, "--qos", str(qos), "--stamp", "--rate", "5000"], check=True, timeout=60)
        got = sub.wait_for(500)
    assert [t for t, _ in got] == [line.split(b"\t")[0].decode() for line in lines]
    for (_, payload), line in zip(got, lines, strict=True):
        sent, doc = orjson.loads(line.split(b"\t", 1)[1]), orjson.loads(payload)
        if isinstance(doc, list):
            stamped, doc[0]["bt"], sent[0]["bt"] = doc[0]["bt"], 0, 0
        else:
            stamped = datetime.fromisoformat(doc["ts"]).timestamp()
            doc["ts"] = sent["ts"] = ""
        assert doc == sent  # only the time changed
        assert before - 1 <= stamped <= datetime.now(UTC).timestamp() + 1


def test_the_platform_runs_in_a_process_of_its_own() -> None:
    with platform_process() as url:
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{url}/api/v1/indicators", timeout=5).json()["filed"] == 0


def test_store_insert_bench_prints_each_size_against_the_empty_store_with_its_settles(tmp_path: Path) -> None:
    """bench/store_insert.py at toy sizes: one line per store size, the empty store's ratio 1.

    100 gauges at one reading a minute make 6,000 readings an hour in three batches, and a
    settle follows each (the interval is 10 minutes); the script exits non-zero if the store
    does not hold every reading.
    """
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "store_insert.py"),
            *("--sizes", "0", "6000", "--readings", "6000", "--gauges", "100"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    lines = [ln for ln in out.splitlines() if "store holding" in ln]
    assert len(lines) == 2
    assert "holding          0 rows" in lines[0] and "ratio to the empty store  1.00" in lines[0]
    assert "holding      6,000 rows" in lines[1] and "one gauge-keyed table" in lines[1]
    assert all("(3 settles" in ln for ln in lines)


def test_interleaved_runs_are_timed_from_the_commits_around_their_ends() -> None:
    """``--interleaved`` times each run of messages by interpolating its end between the
    commits of the batches around it; the first run, with the start-up in it, is not timed."""
    from ingest_throughput import segment_seconds

    # Batches of 3,000 messages, one a second; runs of 4,000 end a third and two thirds of
    # the way through a batch.
    commits = [(10.0, 3000), (11.0, 6000), (12.0, 9000), (13.0, 12000)]
    runs = segment_seconds(commits, 4000, 12000)
    assert math.isnan(runs[0])
    assert runs[1:] == pytest.approx([4000 / 3000, 4000 / 3000])
    # A run that ends on a commit takes that commit's time.
    assert segment_seconds(commits, 3000, 12000)[1:] == pytest.approx([1.0, 1.0, 1.0])


def test_interleaved_stream_is_malformed_only_in_every_other_run(tmp_path: Path) -> None:
    """The alternating stream has its bad messages in the second, fourth, … run only, and
    ``write_messages`` counts every one of them."""
    from ingest_throughput import is_malformed, write_messages

    devices = [(f"rg-{d:06d}", f"110101001{d % 10 + 1:03d}001") for d in range(50)]
    file = tmp_path / "alternating.txt"
    n_bad = write_messages(file, devices, 4000, bad_fraction=0.2, segment=1000)
    bad_at = [i for i, line in enumerate(file.read_bytes().splitlines()) if is_malformed(line)]
    assert len(bad_at) == n_bad > 0
    assert {i // 1000 for i in bad_at} == {1, 3}


def test_interleaved_ratios_weigh_a_slow_run_alike_on_either_side() -> None:
    """Each malformed pass is set against each clean pass beside it, one pair at a time, so a
    slow malformed pass and an equally slow clean one give mirrored ratios (0.5 and 2.0) and
    the stream reads 1.00; and a malformed pass 10 % slower than the clean ones reads the
    valid share over 1.1. The first two passes (start-up, each gauge's second reading) are
    left out."""
    from ingest_throughput import interleaved_ratios

    #   pass:  0 (start-up) 1    2    3 (slow) 4 (slow) 5   6    7
    times = [math.nan, 9.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    pairs, drains = interleaved_ratios(times, 8, 1.0)
    assert sorted(pairs) == [0.5, 1.0, 1.0, 1.0, 2.0]  # 3 against 2 and 4, 5 against 4 and 6, 7 against 6
    assert statistics.median(pairs) == 1.0 and drains == [pytest.approx(1.0)]

    slower = [math.nan, 9.0, 1.0, 1.1, 1.0, 1.1, 1.0, 1.1] * 2  # two drains
    pairs, drains = interleaved_ratios(slower, 8, 0.95)
    assert pairs == pytest.approx([0.95 / 1.1] * 10) and drains == pytest.approx([0.95 / 1.1] * 2)


def test_malformed_cost_is_the_clean_rate_over_the_all_malformed_rate_and_bounds_the_mix() -> None:
    """``--pairs-only``'s all-malformed drain: a bad message's cost over a good one's is the
    clean drain's rate over the all-malformed one's, round by round; and the 5 % bound holds
    exactly when that cost is at most 1 (a bad message as dear as a good one leaves the valid
    readings at the valid share; cheaper, above it; dearer, below)."""
    from ingest_throughput import implied_ratio, malformed_cost

    assert malformed_cost([50_000.0, 40_000.0], [62_500.0, 32_000.0]) == pytest.approx([0.8, 1.25])
    assert implied_ratio(1.0, 0.05) == pytest.approx(0.95)
    assert implied_ratio(0.0, 0.05) == pytest.approx(1.0)  # a free bad message costs nothing
    assert implied_ratio(0.8, 0.05) > 0.95 > implied_ratio(1.25, 0.05)
    # The same figure a drain of the mix would give: 95 valid and 5 malformed messages, a
    # valid one 1 s and a malformed one 0.8 s, against 100 valid ones in 100 s.
    assert implied_ratio(0.8, 0.05) == pytest.approx((95 / (95 * 1.0 + 5 * 0.8)) / (100 / 100))


def test_mixed_cost_recovers_the_cost_the_implied_ratio_was_made_from() -> None:
    """``bench/malformed_mix.py`` reads a bad message's cost among valid ones back from the
    paired ratio: the inverse of ``implied_ratio``, 1 exactly at the bound."""
    from ingest_throughput import implied_ratio, mixed_cost

    for cost in (0.0, 0.5, 1.0, 1.3):
        assert mixed_cost(implied_ratio(cost, 0.05), 0.95) == pytest.approx(cost)
    assert mixed_cost(0.95, 0.95) == pytest.approx(1.0)


def test_bad_last_moves_each_batchs_bad_messages_to_its_end_and_keeps_the_rest_in_order() -> None:
    """``bench/malformed_mix.py --bad-last``: the same messages, each batch's malformed ones at
    its end, the valid ones in their order, no message crossing into another batch."""
    from ingest_throughput import bad_payload, is_malformed
    from malformed_mix import bad_last

    from ingest.contract import InboundMessage

    now = datetime.now(UTC)
    bad = bad_payload("rg-1", 1)
    msgs = [InboundMessage(f"t/{i}", bad if i % 3 == 0 else b"{}", now) for i in range(10)]
    out = bad_last(msgs, 4)
    assert [m.topic for m in out] == ["t/1", "t/2", "t/0", "t/3", "t/4", "t/5", "t/7", "t/6", "t/8", "t/9"]
    assert [is_malformed(m.payload) for m in out[:4]] == [False, False, True, True]


def test_pipeline_cpu_is_the_worker_and_network_threads_of_each_drain() -> None:
    """Both malformed reports sum a drain's worker and other threads the same way."""
    from ingest_throughput import pipeline_cpu

    results = {"bad cpu worker": [10.0, 12.0], "bad cpu other threads": [2.0, 2.5], "cpu worker": [9.0]}
    assert pipeline_cpu(results, "bad cpu ") == [12.0, 14.5]
