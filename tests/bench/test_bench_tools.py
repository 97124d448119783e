"""The benchmark's own tools do what the figures assume: the raw-socket load generator
delivers every message, intact and stamped, and the platform runs in its own process."""

from __future__ import annotations

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
