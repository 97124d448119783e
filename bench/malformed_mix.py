"""The 5 % malformed bound in the batch handler alone, in one process, round after round.

    scripts/with-compiled-hot-path python bench/malformed_mix.py [--rounds 6] [--messages 50000]
                                                                  [--bad-last]

Each round handles three streams, each in a fresh pipeline over a fresh store, in turn
(clean, 5 % malformed, every message malformed; the order reversed every other round):
10,000 messages that show the pipeline every gauge first, then the measured ones. The
streams are the ingest bench's (``bench/ingest_throughput.py``, the same gauges, topics and
payloads, a bad message in place of a good one), handled in its batches of 2,000.

Drains through the broker compare two processes a minute apart, and on these shared hosts
two such drains differ by more than the 5 % the bound compares. Here the three streams run
seconds apart in one process with no MQTT, so the round's ratio moves by about 1 % rather
than 25 %. What this leaves out: the MQTT client, the acks and the dead-letter feed
(``bench/ingest_throughput.py --pairs-only`` times those).

Printed, paired per round against the clean stream: valid readings a second with 5 %
malformed (the bound: no worse than the valid share), the same in this thread's CPU time,
and a malformed message's cost over a valid one's (every message malformed; the bound's
condition for a bad message among its own kind).

``--bad-last`` adds a fourth stream, the 5 % malformed one with each batch's bad messages
moved to its end (the valid ones in the same order), and prints its rate against the
interleaved stream's: what the interleaving itself costs.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from handler_instructions import config  # noqa: E402
from ingest_throughput import is_malformed, mixed_cost, quartiles  # noqa: E402

from gridsense.app import App  # noqa: E402
from gridsense.hot_path import plain_modules  # noqa: E402
from ingest.contract import InboundMessage  # noqa: E402

WARM = 10_000
STREAMS = ("clean", "5 % malformed", "all malformed")
BAD_LAST = "bad ones last"
BATCH = 2_000  # the ingest bench's (bench/ingest_throughput.py: pipeline_config)


class Run(NamedTuple):
    wall_s: float
    cpu_s: float  # this thread, user + system
    readings: int
    dead_letters: int


def handle(stream: str, messages: int) -> Run:
    """One stream through a fresh pipeline: the first ``WARM`` messages untimed."""
    tmp = Path(tempfile.mkdtemp(prefix="gridsense-mix-"))
    try:
        return _handle(tmp, stream, messages)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _handle(tmp: Path, stream: str, messages: int) -> Run:
    if stream == "clean":
        cfg, msgs = config(tmp, WARM + messages)
    elif stream == "5 % malformed":
        cfg, msgs = config(tmp, WARM + messages, bad_fraction=0.05)
    elif stream == BAD_LAST:
        cfg, msgs = config(tmp, WARM + messages, bad_fraction=0.05)
        msgs = msgs[:WARM] + bad_last(msgs[WARM:], BATCH)
    else:
        cfg, msgs = config(tmp, WARM + messages, malformed_after=WARM)
    app = App(cfg)
    size = cfg.mqtt.batch_max
    assert size == BATCH, f"the bench's batches are {size} messages, not {BATCH}"
    try:
        for i in range(0, WARM, size):
            app.pipeline.handle(msgs[i : i + size])
        msgs = msgs[WARM:]
        gc.collect()  # the warm-up's garbage is not the measured part's
        readings = dead = 0
        r0, t0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
        for i in range(0, len(msgs), size):
            out = app.pipeline.handle(msgs[i : i + size])
            readings += out.readings
            dead += len(out.dead_letters)
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_THREAD)
    finally:
        app.conn.close()
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return Run(wall, cpu, readings, dead)


def bad_last(msgs: list[InboundMessage], size: int) -> list[InboundMessage]:
    """Each batch of ``size`` with its malformed messages (the ingest bench's bad payload) moved
    to its end, the rest in their order."""
    out: list[InboundMessage] = []
    for i in range(0, len(msgs), size):
        batch = msgs[i : i + size]
        out += [m for m in batch if not is_malformed(m.payload)] + [
            m for m in batch if is_malformed(m.payload)
        ]
    return out


def valid_ratio(mixed: Run, clean: Run, seconds: str) -> float:
    """Valid readings a second with malformed mixed in, over the clean stream's."""
    return (mixed.readings / getattr(mixed, seconds)) / (clean.readings / getattr(clean, seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--messages", type=int, default=50_000, help="measured messages a stream")
    ap.add_argument(
        "--bad-last", action="store_true", help="also the 5 %% stream with each batch's bad ones last"
    )
    args = ap.parse_args()
    streams = (*STREAMS, BAD_LAST) if args.bad_last else STREAMS
    runs: dict[str, list[Run]] = {s: [] for s in streams}
    for r in range(args.rounds):
        for stream in streams if r % 2 == 0 else streams[::-1]:
            runs[stream].append(handle(stream, args.messages))
    clean, mixed, bad = (runs[s] for s in STREAMS)
    assert all(b.dead_letters == args.messages and b.readings == 0 for b in bad)
    assert all(m.readings + m.dead_letters == args.messages for m in mixed)
    share = mixed[0].readings / args.messages
    wall = [valid_ratio(m, c, "wall_s") for m, c in zip(mixed, clean, strict=True)]
    cpu = [valid_ratio(m, c, "cpu_s") for m, c in zip(mixed, clean, strict=True)]
    cost = [b.wall_s / c.wall_s for b, c in zip(bad, clean, strict=True)]
    compiled = "plain Python" if plain_modules() else "compiled with mypyc"
    print(
        f"batch handler alone, {args.messages} messages a stream after {WARM}, {args.rounds} rounds,"
        f" hot path {compiled}"
    )
    for stream, rs in runs.items():
        us = statistics.median(r.wall_s for r in rs) / args.messages * 1e6
        print(f"  {stream:14s} {us:6.2f} µs a message")
    print(
        f"  valid readings a second with {1 - share:.1%} malformed / clean, paired: {quartiles(wall)}"
        f" (no worse than {share:.4f}: at or above it in {sum(w >= share for w in wall)} of {len(wall)}"
        f" rounds); round by round {' '.join(f'{w:.3f}' for w in wall)}"
    )
    print(f"    the same in CPU time: {quartiles(cpu)}; round by round {' '.join(f'{c:.3f}' for c in cpu)}")
    print(
        f"  every message malformed: a malformed message's cost / a valid one's, paired: {quartiles(cost)};"
        f" round by round {' '.join(f'{c:.2f}' for c in cost)}"
    )
    print(
        f"  a malformed message's cost among valid ones, from the paired median:"
        f" {mixed_cost(statistics.median(wall), share):.2f} of a valid one's (the bound: at most 1)"
    )
    if args.bad_last:
        last = [valid_ratio(b, m, "wall_s") for b, m in zip(runs[BAD_LAST], mixed, strict=True)]
        print(
            f"  each batch's bad messages last / interleaved, valid readings a second, paired:"
            f" {quartiles(last)}; above 1 in {sum(x > 1 for x in last)} of {len(last)} rounds"
        )


if __name__ == "__main__":
    main()
