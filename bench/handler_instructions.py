"""The batch handler alone over a fixed stream: what to run under callgrind.

    scripts/with-compiled-hot-path valgrind --tool=callgrind \\
        --toggle-collect='CPyPy_pipeline___GaugePipeline___handle' \\
        python bench/handler_instructions.py

callgrind counts the instructions executed inside ``GaugePipeline.handle``: the same count
for the same code and input (the stream starts on the hour, see ``config``), whatever else
the machine is doing, where seconds on these
shared machines vary by ±10 % run to run. The stream is the ingest bench's (half JSON, half
SenML, realistic payloads, ``bench/ingest_throughput.py``): 32,000 messages from 10,000
gauges over 1,000 grids, in batches of 2,000, into a fresh store, so every gauge is first
seen in it. The rate it prints is meaningless under valgrind; without it, it is the handler's
rate on this stream. ``--storm`` uses the latency run's stream instead, in which a storm front
sweeps the grids (cases, and street and district summaries, open and follow all through it).

``--warm N`` handles the stream's first N messages before the clock starts, then calls
``time.sleep(0)``, so that callgrind counts only the rest when given
``--zero-before=time_sleep``: with N = 10,000 (one message per gauge) every measured message
comes from a gauge the pipeline has seen, as in a drain (10 messages a gauge) or in service.
``--malformed`` makes every measured message malformed (the ingest bench's bad payload, on
the same gauges' topics): the count against a valid run is what a bad message costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ingest_throughput import pipeline_config, write_messages, write_registry  # noqa: E402

from gridsense.app import App  # noqa: E402
from gridsense.config import GridsenseConfig  # noqa: E402
from ingest.contract import InboundMessage  # noqa: E402


class _NoBroker:
    """The handler never connects; the config only needs a port."""

    port = 1883


def config(
    tmp: Path,
    messages: int,
    storm: bool = False,
    malformed_after: int | None = None,
    bad_fraction: float = 0.0,
) -> tuple[GridsenseConfig, list[InboundMessage]]:
    """The pipeline's config and the stream; from message ``malformed_after`` on, every one is
    malformed (the ingest bench's malformed payload, for the same gauges). ``bad_fraction``:
    the ingest bench's malformed drain instead, that share of the messages replaced by a
    malformed one."""
    grids, devices_csv, devices = write_registry(tmp, 10_000, 1_000)
    stream = tmp / "messages.txt"
    # The stream starts on the hour (two to three hours ago), not at "now minus two hours":
    # the rings advance their buckets by the readings' times, and a start that moved with
    # the clock moved the count by up to 4 % between runs of the same code.
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    write_messages(stream, devices, messages, bad_fraction, storm=storm, start=start)
    lines = stream.read_bytes().splitlines()
    if malformed_after is not None:
        write_messages(stream, devices, messages, bad_fraction=1.0, start=start)
        lines[malformed_after:] = stream.read_bytes().splitlines()[malformed_after:]
    now = datetime.now(UTC)
    msgs = []
    for i, line in enumerate(lines):
        topic, payload = line.split(b"\t", 1)
        msgs.append(InboundMessage(topic.decode(), payload, now, 1, i % 65535 + 1))
    broker = _NoBroker()
    cfg = pipeline_config(tmp, broker, grids, devices_csv, 1, "callgrind", None, "http://127.0.0.1:9")  # type: ignore[arg-type]
    return cfg, msgs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=32_000)
    ap.add_argument("--batch", type=int, default=0, help="messages a batch (default: the bench's 2,000)")
    ap.add_argument(
        "--storm",
        action="store_true",
        help="the latency run's stream: a storm front sweeps the grids, opening incidents and summaries",
    )
    ap.add_argument(
        "--warm",
        type=int,
        default=0,
        help="messages handled before the measured part (callgrind: --zero-before=time_sleep)",
    )
    ap.add_argument(
        "--malformed",
        action="store_true",
        help="every measured message malformed (the warm-up stays valid): what a bad message costs",
    )
    ap.add_argument(
        "--bad-fraction",
        type=float,
        default=0.0,
        help="that share of the stream malformed, mixed in as the ingest bench's malformed drain has it",
    )
    args = ap.parse_args()
    cfg, msgs = config(
        Path(tempfile.mkdtemp(prefix="gridsense-callgrind-")),
        args.messages + args.warm,
        args.storm,
        args.warm if args.malformed else None,
        args.bad_fraction,
    )
    app = App(cfg)
    size = args.batch or cfg.mqtt.batch_max
    for i in range(0, args.warm, size):
        app.pipeline.handle(msgs[i : min(i + size, args.warm)])
    time.sleep(0)  # the mark callgrind zeroes its counters at
    msgs = msgs[args.warm :]
    queued = dead = 0
    t0 = time.perf_counter()
    for i in range(0, len(msgs), size):
        out = app.pipeline.handle(msgs[i : i + size])
        queued += out.cases_queued
        dead += len(out.dead_letters)
    took = time.perf_counter() - t0
    print(
        f"{len(msgs)} messages, {len(msgs) / took:.0f} msg/s, {took / len(msgs) * 1e6:.1f} µs a message;"
        f" {app.pipeline.open_incidents} incidents open, {queued} cases and updates queued,"
        f" {dead} dead letters"
    )
    app.conn.close()


if __name__ == "__main__":
    main()
