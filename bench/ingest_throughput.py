"""Ingest throughput against the broker's own limit, measured in the same run.

    python bench/ingest_throughput.py [--messages 100000] [--devices 10000] [--grids 1000]
                                      [--rounds 2] [--influx] [--no-workers] [--worker-messages 400000]
                                      [--latency [RATE]] [--memory N ...] [--skip-throughput]
                                      [--pairs-only] [--interleaved [--control]]
                                      [--no-deadletter-feed | --whole-deadletter-feed]

Drain method (shared/BENCHMARKING.md): each consumer first connects once with a fixed
client id and a persistent session, goes away, N messages are queued on the broker by a
separate publisher process, and the consumer's drain of those N is timed.

1. The limit: ``mosquitto_sub`` (C, QoS 1, output to /dev/null) draining the same messages.
2. The pipeline, fully processing each reading: decoded and validated, windows updated and
   the default rule set evaluated, written to the store (and, with ``--influx``, through the
   spool to a VictoriaMetrics: the clock stops when the spool is empty), then acknowledged.
   At QoS 1 with manual ack and at QoS 0; and with 5 % malformed messages (every one must
   be dead-lettered). Ingest starts once the stage processes are up, and with ``--influx``
   one untimed drain first creates the gauges' series on the server, as a running city's
   server has them.
   ``--pairs-only`` runs just the clean and malformed drains, a pair a round, for the
   malformed bound over as many rounds as ``--rounds`` asks, and with them a drain of every
   message malformed: what a bad message costs the whole pipeline against a good one.
   ``--interleaved`` measures the bound within drains instead: one stream whose passes over
   the gauges are clean and 5 % malformed in turn, each malformed pass timed against the clean
   ones beside it (``--control``: the same stream with no bad message, which should read 1.00).
3. Workers: a longer stream of the same kind (``--worker-messages``) drained by 1 and by 2
   ``gridsense run`` processes, partitioned by district, with its own ``mosquitto_sub``
   limit, and the speed-up (``--no-workers`` skips it). The workers' clock polls their
   stores; a drain of 100,000 messages lasts about as long as a dozen polls, so it was too
   short to time two processes that start a few polls apart.

``--latency`` replays a live stream at half its own sustained rate (or at ``--latency RATE``)
and reports publish → stored p50/p99, and publish → case in the outbox for threshold
crossings; it runs the pipeline with the default batch size and receive maximum. With
``--outage SECONDS`` the case platform is down for the stream's first seconds, and the
bench compares publish → stored while the outbox's backlog drains with the rest of the run.
``--memory`` reports the pipeline's RSS per active gauge with 10k and 100k gauges.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import math
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from platform_process import free_port, platform_process  # noqa: E402

from detectors.config import CameraConfig  # noqa: E402
from gridsense.app import App, settle_heap  # noqa: E402
from gridsense.config import (  # noqa: E402
    BridgeConfig,
    GridsenseConfig,
    MqttConfig,
    RegistryConfig,
    RulesConfig,
    StoreConfig,
)
from gridsense.embedded_broker import MosquittoBroker  # noqa: E402
from gridsense.model.envelopes import Kind  # noqa: E402
from gridsense.model.incident import IncidentChange  # noqa: E402
from gridsense.model.reading import Reading  # noqa: E402
from ingest.gauge_codec import Sample, encode_json, encode_senml  # noqa: E402
from ingest.influx_sink import InfluxSinkConfig  # noqa: E402

FILTER = "city/+/+/+/+"
DISTRICTS = ("110101", "110102")
BENCH_CONF = "queue_qos0_messages true\nmax_queued_bytes 0\n"
#: How long a drain waits for the pipeline's stage processes to start (``App.start``).
STAGES_READY_S = 60.0


def write_registry(tmp: Path, n_devices: int, n_grids: int) -> tuple[Path, Path, list[tuple[str, str]]]:
    grids, devices, out = (
        ["# crs: wgs84", "grid_code,street_name,community_name,lat,lon"],
        [
            "# crs: wgs84",
            "device_id,kind,grid_code,lat,lon,interval_s",
        ],
        [],
    )
    codes = []
    for g in range(n_grids):  # grids alternate between two districts: the workers' partitions
        street = 1 + g // 100
        code = f"{DISTRICTS[g % 2]}{street:03d}{1 + (g // 10) % 10:03d}{1 + g % 10:03d}"
        codes.append(code)
        grids.append(f"{code},街道{street},社区{g // 10},{39.9 + g * 1e-4:.5f},{116.3 + g * 1e-4:.5f}")
    for d in range(n_devices):
        code = codes[d % n_grids]
        kind = "water" if d % 10 == 9 else "rain"
        dev = f"{kind[0]}g-{d:06d}"
        devices.append(f"{dev},{kind},{code},39.9,116.3,60")
        out.append((dev, code))
    (tmp / "grids.csv").write_text("\n".join(grids) + "\n")
    (tmp / "devices.csv").write_text("\n".join(devices) + "\n")
    return tmp / "grids.csv", tmp / "devices.csv", out


#: The bench's malformed payload: a string where a number belongs, and cut short. What marks
#: a message of a written stream as bad (``is_malformed``).
BAD_VALUE = b'"NaN?"'


def bad_payload(device: str, i: int) -> bytes:
    """The ``i``-th message's malformed payload: each one different (its place in the stream
    for a time), as real bad input is; a copy would be recognised as a redelivery."""
    return b'{"device_id": "%s", "ts": %d, "rain_mm": %s' % (device.encode(), i, BAD_VALUE)


def is_malformed(payload: bytes) -> bool:
    return BAD_VALUE in payload


def write_messages(
    path: Path,
    devices: list[tuple[str, str]],
    n: int,
    bad_fraction: float = 0.0,
    storm: bool = False,
    start: datetime | None = None,
    segment: int = 0,
) -> int:
    """Realistic payloads (~100–200 B, device, ts, value, battery), half JSON, half SenML.

    ``storm``: a storm front sweeps across the grids while the stream runs. The stream passes
    over every gauge in turn; in the k-th of P passes the rain gauges of the k-th P-th of the
    grids read 25 mm, over the 20 mm short-heavy-rain line, so grid incidents open (and
    street and district summaries follow) all through the stream, into a pipeline that has
    seen every gauge, rather than all at once in its first second.

    ``start``: the first reading's timestamp (default two hours ago); a reading every minute
    a gauge from there.

    ``segment``: bad messages only in every other run of ``segment`` messages (the second,
    the fourth, …), the others clean: one drain then times both kinds of stream in turn.
    """
    rng = random.Random(1)
    # Its own generator: a stream with bad messages is the clean stream with some replaced,
    # every other message the same, so the two drains differ only by the bad ones.
    bad_rng = random.Random(2)
    start = start or datetime.now(UTC) - timedelta(hours=2)
    bad = 0
    grid_index = {g: i for i, g in enumerate(sorted({g for _, g in devices}))}
    passes = -(-n // len(devices))

    def storm_front(grid: str) -> int:
        """The pass over the gauges in which the storm reaches ``grid``."""
        return grid_index[grid] * passes // len(grid_index)

    with path.open("wb") as f:
        for i in range(n):
            dev, grid = devices[i % len(devices)]
            kind = Kind.WATER if dev.startswith("w") else Kind.RAIN
            ts = start + timedelta(seconds=i // len(devices) * 60, milliseconds=i % 1000)
            topic = f"city/{grid[:6]}/{grid}/{kind.value}/{dev}"
            may_be_bad = not segment or i // segment % 2 == 1
            if bad_fraction and may_be_bad and bad_rng.random() < bad_fraction:
                payload = bad_payload(dev, i)
                bad += 1
            else:
                measure = "level" if kind is Kind.WATER else "amount"
                value = round(rng.uniform(0, 3), 1) if kind is Kind.WATER else round(rng.uniform(0, 0.4), 1)
                if storm and kind is Kind.RAIN and storm_front(grid) == i // len(devices):
                    value = 25.0
                s = Sample(dev, kind, ts, measure, value, round(rng.uniform(40, 100), 1))
                payload = encode_json(s) if i % 2 else encode_senml(s)
            f.write(topic.encode() + b"\t" + payload + b"\n")
    return bad


def flood(broker: MosquittoBroker, file: Path, rate: float = 0.0, stamp: bool = False, qos: int = 1) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "flood.py"),
        broker.host,
        str(broker.port),
        str(file),
        "--qos",
        str(qos),
    ]
    if rate:
        cmd += ["--rate", str(rate)]
    if stamp:
        cmd.append("--stamp")
    subprocess.run(cmd, check=True)


def end_session(broker: MosquittoBroker, client_id: str) -> None:
    """Drop a measured consumer's persistent session, so later floods are not queued for it."""
    sub = shutil.which("mosquitto_sub") or "mosquitto_sub"
    cmd = [sub, "-h", broker.host, "-p", str(broker.port), "-i", client_id, "-t", FILTER, "-E"]
    subprocess.run(cmd, check=True)  # a clean session replaces the persistent one, then ends


def limit_rate(broker: MosquittoBroker, file: Path, n: int, qos: int = 1) -> float:
    """mosquitto_sub's drain of n queued messages, messages per second."""
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        raise SystemExit("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
    cid = f"limit-{time.time_ns()}"
    base = [sub, "-h", broker.host, "-p", str(broker.port), "-i", cid, "-c", "-q", str(qos), "-t", FILTER]
    subprocess.run([*base, "-E"], check=True)  # subscribe once: the session now exists
    flood(broker, file, qos=qos)
    t0 = time.perf_counter()
    subprocess.run([*base, "-C", str(n)], check=True, stdout=subprocess.DEVNULL)
    rate = n / (time.perf_counter() - t0)
    end_session(broker, cid)
    return rate


def pipeline_config(
    tmp: Path,
    broker: MosquittoBroker,
    grids: Path,
    devices: Path,
    qos: int,
    run: str,
    influx_url: str | None,
    platform_url: str,
    defaults: bool = False,
    deadletter_feed: bool = True,
    feed_budget: bool = True,
) -> GridsenseConfig:
    """The bench's pipeline: drains use large batches; ``defaults`` keeps the shipped ones.
    ``deadletter_feed``: ``mqtt.publish_deadletters``; ``feed_budget``: False publishes every
    dead letter (``mqtt.deadletter_feed_per_s: null``), True keeps the shipped budget."""
    sizes: dict[str, object] = {} if defaults else {"inflight": 5000, "batch_max": 2000}
    if not deadletter_feed:
        sizes["publish_deadletters"] = False
    if not feed_budget:
        sizes["deadletter_feed_per_s"] = None
    sink = {}
    if influx_url:
        sink = {"sink": InfluxSinkConfig(url=influx_url, org="o", bucket="b", token="t", batch_size=20000)}  # type: ignore[arg-type]
    return GridsenseConfig(
        mqtt=MqttConfig(port=broker.port, client_id=f"gs-bench-{run}", qos=qos, **sizes),  # type: ignore[arg-type]
        registry=RegistryConfig(grids=grids, devices=devices),
        cameras=CameraConfig(enabled=False),
        store=StoreConfig(path=tmp / f"{run}.db"),
        rules=RulesConfig(tick_s=3600),
        bridge=BridgeConfig(url=platform_url, status_poll_s=3600),
        **sink,  # type: ignore[arg-type]
    )


def stages_up(app: App) -> None:
    """Stop the bench if ``App.start`` gave up waiting for the stage processes."""
    if not app.stages_ready:
        raise SystemExit(f"the pipeline's stage processes did not start in {STAGES_READY_S:.0f} s")


def make_session(cfg: GridsenseConfig) -> None:
    """Connect once and go away: the persistent session now queues what is published."""
    app = App(cfg)
    app.start()
    assert app.gateway.wait_connected(15)
    app.stop()


class Drain(NamedTuple):
    """One drain through the full pipeline."""

    rate: float  # sustained, from the first committed batch
    from_start: float  # the same drain counted from App.start
    startup_s: float  # App.start to the first commit
    app: App
    # CPU µs a message over the sustained part (see ``drain_cpu``), and "collector": the wall
    # µs a message spent in the cyclic collector, in any thread of this process
    cpu: dict[str, float]
    sink_lag_s: float  # the last message handled to the spool empty (0 without the sink)
    commits: list[tuple[float, int]]  # (perf_counter, messages taken) at each committed batch


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) a process, or one of its threads, has used, from /proc."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_cpu(broker: MosquittoBroker, worker: int, others: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of the worker thread, the rest of this process (the MQTT network
    thread, chiefly), the broker and the ``others`` (processes by name: the spool's forwarder,
    the time-series server); empty where there is no /proc."""
    try:
        total, own = cpu_seconds(os.getpid()), cpu_seconds(os.getpid(), worker)
        cpu = {"worker": own, "other threads": total - own}
        for name, pid in {"broker": broker.pid, **others}.items():
            if pid is not None:
                cpu[name] = cpu_seconds(pid)
    except OSError:
        return {}
    return cpu


def pipeline_rate(
    cfg: GridsenseConfig, broker: MosquittoBroker, file: Path, n: int, qos: int, sink_pid: int | None = None
) -> Drain:
    """Drain n queued messages through the full pipeline; messages per second, sustained.

    The clock starts at the first committed batch, as ``workers_rate``'s does at the first
    stored reading: what comes before it is the process starting (the registries loaded, the
    session resumed), which a running pipeline pays once, not per message. The messages of
    that first batch are not counted. Ingest waits for the stage processes (case delivery,
    the spool's forwarder) to be up (``App.start(stages_ready_s=…)``): spawning them costs
    about a second of CPU, mostly imports, which otherwise ran on the cores the drain was
    timed on. It was: on 2 cores it made the forwarder look three times as costly as it is.
    The rate from ``App.start`` on and the start-up time come with it, and the bench prints
    them beside the sustained rate. ``sink_pid``: the time-series server's process, whose
    CPU is counted with the rest.
    """
    make_session(cfg)
    flood(broker, file, qos=qos)
    app = App(cfg)
    first: list[tuple[float, int]] = []

    def handled() -> int:
        c = app.gateway.counters
        return c["readings"] + c["duplicates"] + c["dead_letters"]

    cpu_at_first: dict[str, float] = {}
    worker: list[int] = []

    def others() -> dict[str, int | None]:
        if app.forwarder is None:
            return {}
        return {"forwarder": app.forwarder.pid, "time-series server": sink_pid}

    commits: list[tuple[float, int]] = []

    def on_commit(_readings: object, _changes: object) -> None:
        commits.append((time.perf_counter(), app.gateway.taken))
        if not first:  # on the worker thread, inside its first batch
            first.append(commits[0])
            worker.append(threading.get_native_id())
            cpu_at_first.update(drain_cpu(broker, worker[0], others()))
            cpu_at_first["collector"] = collector.total()

    app.pipeline.on_commit = on_commit
    # As 'gridsense run' does after start; here before it, so the collection is not timed.
    # Undone by release_heap() after the drain.
    settle_heap()
    collector = CollectorPauses()  # the collector's share of the threads' time, any thread
    gc.callbacks.append(collector)
    t0 = time.perf_counter()
    app.start(stages_ready_s=STAGES_READY_S)
    stages_up(app)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and handled() < n:
        time.sleep(0.01)
    handled_at = time.perf_counter()
    if app.forwarder is not None:  # written to the sink: the clock stops when the spool is empty
        with closing(sqlite3.connect(cfg.store.path)) as spool:
            while (
                time.monotonic() < deadline
                and spool.execute("SELECT 1 FROM influx_spool_batches LIMIT 1").fetchone()
            ):
                if app.forwarder.exitcode is not None:
                    raise SystemExit(f"the spool forwarder exited ({app.forwarder.exitcode}): see above")
                time.sleep(0.01)
    end = time.perf_counter()
    gc.callbacks.remove(collector)
    t_first, in_first = first[0]
    cpu_at_end = drain_cpu(broker, worker[0], others())
    cpu_at_end["collector"] = collector.total()
    counted = n - in_first
    cpu = {k: (cpu_at_end[k] - cpu_at_first[k]) / counted * 1e6 for k in cpu_at_end}
    return Drain(counted / (end - t_first), n / (end - t0), t_first - t0, app, cpu, end - handled_at, commits)


def segment_seconds(commits: list[tuple[float, int]], segment: int, n: int) -> list[float]:
    """Seconds the worker spent on each run of ``segment`` messages, from the commits' clock.

    A message's time is interpolated between the commits of the batches around it. The
    first run, which holds the first batch and so the start-up, is not timed (``nan``).
    """
    taken = [m for _, m in commits]

    def time_of(message: int) -> float:
        k = bisect.bisect_left(taken, message)  # the first commit to have taken it
        if k == len(commits):
            return math.nan
        t1, m1 = commits[k]
        if m1 == message:
            return t1
        if k == 0:
            return math.nan
        t0, m0 = commits[k - 1]
        return t0 + (t1 - t0) * (message - m0) / (m1 - m0)

    ends = [time_of(end) for end in range(segment, n + 1, segment)]
    return [math.nan] + [b - a for a, b in itertools.pairwise(ends)]


def handler_rate(cfg: GridsenseConfig, file: Path, n: int) -> float:
    """The batch handler alone, no MQTT: the same messages, in the gateway's batch size."""
    from ingest.contract import InboundMessage

    now = datetime.now(UTC)
    msgs = []
    for i, line in enumerate(file.read_bytes().splitlines()[:n]):
        topic, payload = line.split(b"\t", 1)
        msgs.append(InboundMessage(topic.decode(), payload, now, 1, i % 65535 + 1))
    app = App(cfg)
    size = cfg.mqtt.batch_max
    settle_heap()
    t0 = time.perf_counter()
    for i in range(0, len(msgs), size):
        app.pipeline.handle(msgs[i : i + size])
    rate = len(msgs) / (time.perf_counter() - t0)
    app.conn.close()
    release_heap()
    return rate


def hot_path() -> str:
    """Whether the modules every reading runs through are compiled (setup.py) or plain Python."""
    from gridsense.hot_path import describe, plain_modules

    if plain_modules():
        return f"{describe()} (scripts/with-compiled-hot-path runs it compiled)"
    return describe()


def release_heap() -> None:
    """Undo ``settle_heap`` once a measured App is done, outside the timed part: this process
    builds many Apps, and what a frozen one held would otherwise stay for good."""
    gc.unfreeze()
    gc.collect()


def gateway_ceiling(broker: MosquittoBroker, file: Path, n: int) -> float:
    """The MQTT client alone: the gateway (paho, batches, manual acks) with a handler that does nothing."""
    from ingest.contract import BatchOutcome, InboundMessage
    from ingest.gateway import MqttGateway
    from ingest.topics import TopicScheme

    cfg = MqttConfig(port=broker.port, client_id=f"ceiling-{time.time_ns()}", inflight=5000, batch_max=2000)

    def noop(batch: Sequence[InboundMessage]) -> BatchOutcome:
        return BatchOutcome(readings=len(batch))

    gw = MqttGateway(cfg, TopicScheme("city"), noop)
    gw.start()
    assert gw.wait_connected(15)
    gw.stop()
    flood(broker, file)
    gw = MqttGateway(cfg, TopicScheme("city"), noop)
    t0 = time.perf_counter()
    gw.start()
    while gw.counters["readings"] < n:
        time.sleep(0.005)
    rate = n / (time.perf_counter() - t0)
    gw.stop()
    end_session(broker, cfg.client_id)
    return rate


def workers_rate(
    tmp: Path, broker: MosquittoBroker, cfg: GridsenseConfig, file: Path, n: int, workers: int, run: str
) -> float:
    """n queued messages drained by ``workers`` processes (``gridsense run``), one district each.

    Each worker is a process of its own, as deployed, so each has its own interpreter and
    GIL. The clock starts when the first reading is stored (process start-up is not
    ingest; each worker's stage processes are up before it ingests, ``--stages-ready-s``)
    and stops when all n are; stores are polled every 0.05 s (a count over 400,000 rows
    takes about 2 ms).
    """
    parts: list[list[str] | None] = [None] if workers == 1 else [[f"city/{d}/#"] for d in DISTRICTS]
    assert workers in (1, len(DISTRICTS)), "one worker, or one per district"
    configs, stores = [], []
    for i, part in enumerate(parts):
        wcfg = cfg.model_copy(
            update={
                "mqtt": cfg.mqtt.model_copy(update={"client_id": f"gs-{run}-w{i}", "partition": part}),
                "store": cfg.store.model_copy(update={"path": tmp / f"{run}-w{i}.db"}),
            }
        )
        make_session(wcfg)
        path = tmp / f"{run}-w{i}.yaml"
        path.write_text(yaml.safe_dump(wcfg.model_dump(mode="json", exclude_none=True)))
        configs.append(path)
        stores.append(wcfg.store.path)
    flood(broker, file)
    cmd = [sys.executable, "-m", "gridsense.cli", "run", "--stages-ready-s", str(STAGES_READY_S), "--config"]
    procs = [subprocess.Popen([*cmd, str(c)], cwd=ROOT, stderr=subprocess.DEVNULL) for c in configs]
    try:
        t0, first = 0.0, 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = sum(_stored(db) for db in stores)
            if not t0 and done:
                t0, first = time.perf_counter(), done
            if done >= n:
                return (n - first) / (time.perf_counter() - t0)
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker exited during the drain")
            time.sleep(0.05)
        raise SystemExit(f"workers stored {done} of {n} in 600 s")
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        for i in range(len(parts)):
            end_session(broker, f"gs-{run}-w{i}")


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
    except sqlite3.OperationalError:  # the worker has not created the table yet
        return 0
    finally:
        conn.close()


def run_throughput(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gridsense-bench-"))
    grids, devices_csv, devices = write_registry(tmp, args.devices, args.grids)
    good = tmp / "good.txt"
    write_messages(good, devices, args.messages)
    bad_file = tmp / "bad.txt"
    n_bad = write_messages(bad_file, devices, args.messages, bad_fraction=0.05)
    all_bad = tmp / "all-bad.txt"
    write_messages(all_bad, devices, args.messages, bad_fraction=1.0)
    # --interleaved: a run is one pass over every gauge (a minute of readings), so clean and
    # malformed runs hold the same gauges in the same order; with runs of half a pass, the
    # malformed ones would always hold the second half of the gauges.
    segment = args.devices
    alternating = tmp / "alternating.txt"
    if args.interleaved:
        n_bad_alternating = write_messages(
            alternating, devices, args.messages, bad_fraction=0.0 if args.control else 0.05, segment=segment
        )
    long = tmp / "long.txt"
    if not args.no_workers:
        write_messages(long, devices, args.worker_messages)
    cleanup = ExitStack()
    platform_url = cleanup.enter_context(platform_process())
    vm = None
    influx_url = None
    if args.influx:
        port = free_port()
        vm = subprocess.Popen(
            [
                "victoria-metrics",
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={tmp / 'vm'}",
                "-loggerLevel=ERROR",
                "-dedup.minScrapeInterval=1ms",
                "-retentionPeriod=100y",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        influx_url = f"http://127.0.0.1:{port}"
    broker = MosquittoBroker(extra_conf=BENCH_CONF).start()
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "limit",
            "ceiling",
            "handler",
            "handler_bad",
            "qos1",
            "qos0",
            "qos1_from_start",
            "startup_s",
            "sink_lag_s",
            "limit_bad",
            "qos1_bad",
            "qos1_all_bad",
            "limit_long",
            "w1",
            "w2",
        )
    }

    def drain(run: str, file: Path, qos: int) -> tuple[Drain, int]:
        """One pipeline drain of ``file``, and how many dead letters it counted."""
        cfg = pipeline_config(
            tmp,
            broker,
            grids,
            devices_csv,
            qos,
            run,
            influx_url,
            platform_url,
            deadletter_feed=args.feed,
            feed_budget=args.feed_budget,
        )
        done = pipeline_rate(cfg, broker, file, args.messages, qos, None if vm is None else vm.pid)
        dead = done.app.gateway.counters["dead_letters"]
        done.app.stop()
        release_heap()
        end_session(broker, cfg.mqtt.client_id)
        return done, dead

    def handler_side(clean: bool, r: int) -> None:
        """The batch handler alone on every message valid, or every one malformed."""
        key, name, file = ("handler", "h", good) if clean else ("handler_bad", "hb", all_bad)
        cfg = pipeline_config(tmp, broker, grids, devices_csv, 1, f"{name}-{r}", influx_url, platform_url)
        results[key].append(handler_rate(cfg, file, args.messages))

    def clean_drain(r: int) -> None:
        clean = drain(f"q1-{r}", good, 1)[0]
        results["qos1"].append(clean.rate)
        for part, us in clean.cpu.items():
            results.setdefault(f"cpu {part}", []).append(us)
        results["qos1_from_start"].append(clean.from_start)
        results["startup_s"].append(clean.startup_s)
        results["sink_lag_s"].append(clean.sink_lag_s)

    def malformed_drain(r: int) -> None:
        bad, dead = drain(f"bad-{r}", bad_file, 1)
        assert dead == n_bad, f"expected {n_bad} dead letters, got {dead}"
        results["qos1_bad"].append(bad.rate)
        for part, us in bad.cpu.items():
            results.setdefault(f"bad cpu {part}", []).append(us)

    def all_malformed_drain(r: int) -> None:
        """Every message malformed: what a bad message costs the whole pipeline."""
        done, dead = drain(f"all-bad-{r}", all_bad, 1)
        assert dead == args.messages, f"expected {args.messages} dead letters, got {dead}"
        results["qos1_all_bad"].append(done.rate)
        for part, us in done.cpu.items():
            results.setdefault(f"all bad cpu {part}", []).append(us)

    def interleaved_drain(r: int) -> None:
        """One drain of the stream whose runs of messages are clean and 5 % malformed in turn."""
        done, dead = drain(f"alt-{r}", alternating, 1)
        assert dead == n_bad_alternating, f"expected {n_bad_alternating} dead letters, got {dead}"
        seconds = segment_seconds(done.commits, segment, args.messages)
        results.setdefault("alternating", []).extend(seconds)

    try:
        if args.influx:
            # The first readings of a gauge create its series on the server, which costs it
            # several times what a point of a known series does: a city's server knows its
            # gauges already. One drain, not timed, creates them all.
            drain("sink-warm-up", good, 1)
        for r in range(args.rounds):  # A B A B: the machine is shared and noisy
            # Each pair back to back, the clean side first in even rounds and second in odd
            # ones: their ratio is the one that matters, and a drift within a round (the
            # host's load, the heap) then counts against each side alike.
            order = (True, False) if r % 2 == 0 else (False, True)
            if args.interleaved:
                interleaved_drain(r)
                continue
            if args.pairs_only:
                # The every-message-malformed drain at the round's malformed end (C B A, A B C):
                # the clean and 5 % drains stay side by side, and the clean and all-malformed
                # ones are two apart in either order.
                sides = [clean_drain if clean else malformed_drain for clean in order]
                sides.insert(0 if sides[0] is malformed_drain else 2, all_malformed_drain)
                for side in sides:
                    side(r)
                continue
            results["limit"].append(limit_rate(broker, good, args.messages))
            results["ceiling"].append(gateway_ceiling(broker, good, args.messages))
            for clean in order:
                handler_side(clean, r)
            results["limit_bad"].append(limit_rate(broker, bad_file, args.messages))
            for clean in order:
                (clean_drain if clean else malformed_drain)(r)
            results["qos0"].append(drain(f"q0-{r}", good, 0)[0].rate)
            if not args.no_workers:
                results["limit_long"].append(limit_rate(broker, long, args.worker_messages))
                for w in (1, 2):
                    cfg = pipeline_config(
                        tmp, broker, grids, devices_csv, 1, f"w{w}-{r}", influx_url, platform_url
                    )
                    results[f"w{w}"].append(
                        workers_rate(tmp, broker, cfg, long, args.worker_messages, w, f"w{w}-{r}")
                    )
    finally:
        broker.cleanup()
        cleanup.close()
        if vm is not None:
            vm.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items() if v}
    sink = "SQLite + spool → VictoriaMetrics" if args.influx else "SQLite"
    print(
        f"\ningest drain, {args.messages} messages, {args.devices} devices, {args.grids} grids, sink {sink},"
        + (
            f" {args.rounds} drains of one stream, clean and malformed passes in turn,"
            if args.interleaved
            else f" median of {args.rounds} rounds (A B A B; the clean/malformed pairs A B, B A),"
        )
        + f" hot path {hot_path()}"
    )
    if args.interleaved:
        print_interleaved(results["alternating"], segment, args.messages // segment, n_bad_alternating)
        return
    if args.pairs_only:
        print_malformed_bound(results, n_bad / args.messages)
        print_malformed_cost(results, n_bad / args.messages)
        return
    print(f"  limit: mosquitto_sub QoS 1            {med['limit']:9.0f} msg/s")
    print(
        f"  gateway alone (paho, no-op handler)   {med['ceiling']:9.0f} msg/s   ratio"
        f" {med['ceiling'] / med['limit']:.2f}: the Python MQTT client's own ceiling"
    )
    print(
        f"  batch handler alone (no MQTT)         {med['handler']:9.0f} msg/s   ratio"
        f" {med['handler'] / med['limit']:.2f}: decode, rules, store, one thread"
    )
    q1, q0, lim = med["qos1"], med["qos0"], med["limit"]
    print(f"  pipeline QoS 1, manual ack            {q1:9.0f} msg/s   ratio {q1 / lim:.2f}  (target ≥ 0.35)")
    print(f"  pipeline QoS 0                        {q0:9.0f} msg/s   ratio {q0 / lim:.2f}")
    print(
        f"    (sustained: from the first committed batch. Counted from App.start, the QoS 1 drain"
        f" runs at {med['qos1_from_start']:.0f} msg/s, ratio {med['qos1_from_start'] / lim:.2f};"
        f" start-up to the first commit {med['startup_s']:.2f} s)"
    )
    if "cpu worker" in med:
        # One interpreter lock: the worker and the network thread take turns, so the wall time
        # a message is at least their CPU time together; what is beyond it is hand-off.
        wall, worker, others = 1e6 / q1, med["cpu worker"], med["cpu other threads"]
        print(
            f"    where the QoS 1 drain's time goes, µs a message: wall {wall:.2f}; CPU of the worker"
            f" thread {worker:.2f} (the handler alone took {1e6 / med['handler']:.2f} of wall),"
            f" of the process's other threads (MQTT network) {others:.2f}, of the broker"
            f" {med.get('cpu broker', math.nan):.2f}. Neither pipeline thread on a core:"
            f" {wall - worker - others:.2f}. In the cyclic collector (in those threads, wall)"
            f" {med.get('cpu collector', math.nan):.2f}"
        )
        if "cpu forwarder" in med:
            cores = os.cpu_count() or 1
            print(
                f"    and with the sink: CPU µs a message of the spool's forwarder"
                f" {med['cpu forwarder']:.2f}, of the time-series server"
                f" {med.get('cpu time-series server', math.nan):.2f}; on {cores} cores the drain"
                f" had {cores * wall:.2f} µs of CPU a message in all. The spool emptied"
                f" {med['sink_lag_s']:.2f} s after the last message was handled"
            )
    valid_share = 1 - n_bad / args.messages
    print(f"  5 % malformed: limit                  {med['limit_bad']:9.0f} msg/s")
    print(
        f"  5 % malformed: pipeline QoS 1         {med['qos1_bad']:9.0f} msg/s   ratio"
        f" {med['qos1_bad'] / med['limit_bad']:.2f}; valid readings {med['qos1_bad'] * valid_share:.0f}/s,"
        f" {n_bad} dead letters counted = sent"
    )
    print_malformed_bound(results, n_bad / args.messages)
    # The same bound measured where the noise is smaller: the handler alone, every message
    # malformed against every message valid, back to back in each round.
    cost = statistics.median(g / b for g, b in zip(results["handler"], results["handler_bad"], strict=True))
    print(
        f"  batch handler alone, a malformed message's cost / a valid one's, paired per round: {cost:.2f}"
        "  (no more than 1.00)"
    )
    if not args.no_workers:
        w1, w2, lim_long = med["w1"], med["w2"], med["limit_long"]
        print(
            f"  workers (processes, one district each), {args.worker_messages} messages;"
            f" mosquitto_sub {lim_long:.0f} msg/s on them"
        )
        print(f"    1 worker   {w1:9.0f} msg/s   ratio {w1 / lim_long:.2f}")
        print(f"    2 workers  {w2:9.0f} msg/s   ratio {w2 / lim_long:.2f}   speed-up 1 → 2 {w2 / w1:.2f}")


def quartiles(values: list[float]) -> str:
    """``median [lower quartile, upper quartile]`` of ``values``, or just the value for one."""
    if len(values) < 2:
        return f"{values[0]:.2f}"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.2f} [{q1:.2f}, {q3:.2f}]"


def pipeline_cpu(results: dict[str, list[float]], prefix: str) -> list[float]:
    """Each drain's pipeline CPU µs a message: its worker thread and its other threads (the
    MQTT network thread), from ``results``' ``<prefix>worker`` and ``<prefix>other threads``."""
    parts = zip(results[f"{prefix}worker"], results[f"{prefix}other threads"], strict=True)
    return [worker + network for worker, network in parts]


def print_malformed_bound(results: dict[str, list[float]], bad_share: float) -> None:
    """The 5 % malformed bound, from the clean and malformed drains paired by round.

    Valid readings a second with 5 % malformed against the clean run's: no worse than the
    valid share, for a bad message may cost at most what a good one does. Each round's
    malformed drain is compared with the same round's clean one, as the host's speed drifts
    between rounds by more than the 5 % compared. The same ratio in the pipeline's CPU time
    (worker and network threads) comes beside it: valid readings a CPU second against the
    clean run's. A thread kept off a core by another process does not count in it, but on
    this host it moved between drains as the wall time did (2026-11-29: 30 pairs), so it is
    a second look, not a steadier one.
    """
    valid_share = 1 - bad_share
    bad_wall, clean_wall = (1e6 / statistics.median(results[k]) for k in ("qos1_bad", "qos1"))
    print(
        "    where the malformed drain's time goes, µs a message (the clean drain's in brackets):"
        f" wall {bad_wall:.2f} ({clean_wall:.2f})"
        + "".join(
            f"; CPU of the {label} {statistics.median(results[f'bad cpu {part}']):.2f}"
            f" ({statistics.median(results[f'cpu {part}']):.2f})"
            for part, label in (
                ("worker", "worker thread"),
                ("other threads", "MQTT network thread"),
                ("collector", "cyclic collector (in those threads, wall)"),
                ("broker", "broker"),
            )
            if f"bad cpu {part}" in results and f"cpu {part}" in results
        )
    )
    wall = [b * valid_share / c for b, c in zip(results["qos1_bad"], results["qos1"], strict=True)]
    met = sum(w >= valid_share for w in wall)
    print(
        f"  valid readings with 5 % malformed / clean run, paired per round: {quartiles(wall)}"
        f"  (no worse than {valid_share:.2f}: a bad message may cost at most what a good one does;"
        f" at or above it in {met} of {len(wall)} rounds)"
    )
    if len(wall) > 1:
        # Each round's ratio, and the ratio of the two sides' medians: with the drains' own
        # spread larger than the 5 % compared, how far apart these are shows how much the
        # verdict rests on the noise.
        print(
            f"    round by round: {' '.join(f'{w:.2f}' for w in wall)}; from each side's median"
            f" drain: {valid_share * clean_wall / bad_wall:.2f}"
        )
    if "bad cpu worker" in results and "cpu worker" in results:
        bad_cpu, clean_cpu = pipeline_cpu(results, "bad cpu "), pipeline_cpu(results, "cpu ")
        cpu = [valid_share * clean / bad for bad, clean in zip(bad_cpu, clean_cpu, strict=True)]
        of_medians = valid_share * statistics.median(clean_cpu) / statistics.median(bad_cpu)
        print(
            f"    the same in the pipeline's CPU time (valid readings a CPU second / the clean run's),"
            f" paired: {quartiles(cpu)}; at or above {valid_share:.2f} in"
            f" {sum(c >= valid_share for c in cpu)} of {len(cpu)} rounds; from each side's median:"
            f" {of_medians:.2f}"
        )


def malformed_cost(clean_rates: list[float], all_bad_rates: list[float]) -> list[float]:
    """A malformed message's cost over a valid one's, per round: the clean drain's messages a
    second over the every-message-malformed drain's (the same gauges, topics and number)."""
    return [clean / bad for clean, bad in zip(clean_rates, all_bad_rates, strict=True)]


def implied_ratio(cost: float, bad_share: float) -> float:
    """Valid readings a second with ``bad_share`` malformed, over the clean stream's, if a
    malformed message costs ``cost`` valid ones and the two kinds cost what they cost alone:
    the valid share of the messages, over the time they now take (1 for the clean stream)."""
    valid_share = 1 - bad_share
    return valid_share / (valid_share + bad_share * cost)


def mixed_cost(ratio: float, share: float) -> float:
    """A malformed message's cost in valid ones', from the valid-readings ``ratio`` of a stream
    whose valid ``share`` the rest is malformed: the inverse of ``implied_ratio``,
    s / (s + (1 - s) c) = ratio."""
    return (1 / ratio - 1) * share / (1 - share)


def print_malformed_cost(results: dict[str, list[float]], bad_share: float) -> None:
    """The 5 % bound from its other side: what a malformed message costs the whole pipeline.

    A bad message may cost at most what a good one does, which is what the bound asks: with a
    malformed message at ``c`` valid ones, a stream with 5 % of them carries its valid readings
    at 0.95 / (0.95 + 0.05 c) of the clean rate, at least 0.95 exactly when ``c`` ≤ 1. The
    drains that time it differ by all their messages, not by 5 % of them, so what they compare
    is twenty times as large against the host's noise, which moves a drain by more than 5 %.
    What this leaves out: any effect of mixing the two kinds, which ``bench/malformed_mix.py``
    and the interleaved drains measure.
    """
    if not results.get("qos1_all_bad"):
        return
    cost = malformed_cost(results["qos1"], results["qos1_all_bad"])
    median = statistics.median(cost)
    print(
        f"  a malformed message's cost / a valid one's, whole pipeline (the clean drain's rate /"
        f" the every-message-malformed drain's), paired per round: {quartiles(cost)}; at most 1.00"
        f" in {sum(c <= 1 for c in cost)} of {len(cost)} rounds (round by round"
        f" {' '.join(f'{c:.2f}' for c in cost)}). At the median, 5 % malformed would carry valid"
        f" readings at {implied_ratio(median, bad_share):.3f} of the clean rate"
        f" (no worse than {1 - bad_share:.2f})"
    )
    if "all bad cpu worker" in results and "cpu worker" in results:
        bad_cpu, clean_cpu = pipeline_cpu(results, "all bad cpu "), pipeline_cpu(results, "cpu ")
        cpu = [b / c for b, c in zip(bad_cpu, clean_cpu, strict=True)]
        print(
            f"    the same in the pipeline's CPU time (worker and network threads, µs a message"
            f" malformed / valid): {quartiles(cpu)}; µs a message {statistics.median(bad_cpu):.2f}"
            f" against {statistics.median(clean_cpu):.2f}"
            + (
                f"; of the broker {statistics.median(results['all bad cpu broker']):.2f} against"
                f" {statistics.median(results['cpu broker']):.2f} (the dead-letter feed it carries)"
                if "all bad cpu broker" in results and "cpu broker" in results
                else ""
            )
        )


def interleaved_ratios(
    seconds: list[float], runs: int, valid_share: float
) -> tuple[list[float], list[float]]:
    """Valid readings a second in a malformed run against a clean one: for each pair of
    neighbouring runs, and for each drain (its clean runs' mean time against its malformed
    runs'). ``seconds`` holds each drain's ``runs`` run times in turn, the even runs clean;
    the first two of each drain are left out (``print_interleaved``).

    Each malformed run (3, 5, …) is set against each clean run beside it, one pair at a
    time, so a slow run weighs the same on either side. Against its neighbours' mean, a
    slow malformed run counted twice what a slow clean one did, and a stream with no bad
    message at all read 0.93 where it should read 1.00.
    """
    pairs: list[float] = []
    drains: list[float] = []
    for start in range(0, len(seconds), runs):
        times = seconds[start : start + runs]
        for k in range(3, runs, 2):
            pairs += [valid_share * times[j] / times[k] for j in (k - 1, k + 1) if j < runs]
        clean, bad = times[2::2], times[3::2]
        drains.append(valid_share * statistics.mean(clean) / statistics.mean(bad))
    return pairs, drains


def print_interleaved(seconds: list[float], segment: int, runs: int, n_bad: int) -> None:
    """The 5 % malformed bound within drains: ``runs`` runs of ``segment`` messages a drain,
    clean and 5 % malformed in turn, each malformed run against each clean run beside it.

    Two drains a minute apart differ by more than the 5 % the bound compares; two runs of
    messages a fraction of a second apart, in one drain of one process, less. The first two
    runs of each drain are left out: the first holds the start-up, and the second, each
    gauge's second reading, took about 1.8 times as long as a pass did later (two drains of
    a stream with no bad message). ``seconds`` holds every drain's runs, ``n_bad`` the bad
    messages of one drain.
    """
    share = n_bad / (runs // 2 * segment)  # in the malformed runs
    valid_share = 1 - share
    ratios, drains = interleaved_ratios(seconds, runs, valid_share)
    print(
        f"  runs of {segment} messages (a pass over every gauge), {share:.0%} malformed"
        f" in every other one, {len(drains)} drains: valid readings a second in a malformed run / in"
        f" a clean run beside it {quartiles(ratios)} over {len(ratios)} pairs, at or above"
        f" {valid_share:.2f} in {sum(r >= valid_share for r in ratios)}; drain by drain"
        f" {' '.join(f'{d:.2f}' for d in drains)} (no worse than {valid_share:.2f}: a bad message may"
        " cost at most what a good one does)"
    )


def run_latency(args: argparse.Namespace, rate: float) -> None:
    """A live stream at ``rate``; publish → stored and publish → case-in-outbox latencies.

    ``rate`` < 0: half the sustained rate of this kind of stream (a storm front sweeping across
    the grids, so cases are filed), measured first by draining 60,000 messages of it.

    The first pass over the gauges is also the pipeline's first sight of each one (a fresh
    store); the figures after it are reported on their own as well.
    """
    tmp = Path(tempfile.mkdtemp(prefix="gridsense-bench-"))
    grids, devices_csv, devices = write_registry(tmp, args.devices, args.grids)
    file = tmp / "live.txt"
    cleanup = ExitStack()
    if args.outage:  # nothing listens there yet: the cases filed meanwhile wait in the outbox
        platform_port = free_port()
        platform_url = f"http://127.0.0.1:{platform_port}"
    else:
        platform_url = cleanup.enter_context(platform_process())
    broker = MosquittoBroker(extra_conf=BENCH_CONF).start()
    sustained = None
    if rate < 0:
        write_messages(file, devices, 60_000, storm=True)
        drain_cfg = pipeline_config(
            tmp, broker, grids, devices_csv, 1, "live-drain", None, platform_url, defaults=True
        )
        measured = pipeline_rate(drain_cfg, broker, file, 60_000, 1)
        measured.app.stop()
        end_session(broker, drain_cfg.mqtt.client_id)
        sustained = measured.rate
        rate = sustained / 2
    n = int(rate * (args.outage + 30 if args.outage else 20))  # an outage, then time to drain
    write_messages(file, devices, n, storm=True)
    cfg = pipeline_config(tmp, broker, grids, devices_csv, 1, "live", None, platform_url, True)
    app = App(cfg)
    stored_lat: list[float] = []
    stored_at: list[float] = []
    case_lat: list[float] = []
    case_at: list[float] = []

    def on_commit(readings: list[Reading], changes: list[IncidentChange]) -> None:
        now = time.time()
        stored_lat.extend(now - r.ts.timestamp() for r in readings)
        stored_at.extend([now] * len(readings))
        opened = [now - c.at.timestamp() for c in changes if c.kind == "opened"]
        case_lat.extend(opened)
        case_at.extend([now] * len(opened))

    outage: dict[str, float] = {}

    def platform_returns() -> None:
        """After ``--outage`` seconds of the stream the platform comes up; time the backlog's drain."""
        time.sleep(args.outage)
        cleanup.enter_context(platform_process(platform_port))
        outage["up"] = time.time()
        with closing(sqlite3.connect(cfg.store.path)) as conn:
            # The backlog is what waits now; the stream queues more meanwhile, which is not it.
            waiting = "SELECT COUNT(*), MAX(seq) FROM outbox WHERE status = 'pending'"
            outage["backlog"], last = conn.execute(waiting).fetchone()
            left = "SELECT 1 FROM outbox WHERE status = 'pending' AND seq <= ? LIMIT 1"
            while conn.execute(left, (last,)).fetchone():
                time.sleep(0.02)
        outage["drained"] = time.time()

    app.pipeline.on_commit = on_commit
    app.start(stages_ready_s=STAGES_READY_S)  # a running pipeline: its stages are up
    stages_up(app)
    settle_heap()  # as 'gridsense run' does
    collector = CollectorPauses()
    gc.callbacks.append(collector)
    assert app.gateway.wait_connected(15)
    watcher = threading.Thread(target=platform_returns, daemon=True)
    try:
        if args.outage:
            watcher.start()
        flood(broker, file, rate=rate, stamp=True)
        time.sleep(2)
    finally:
        gc.callbacks.remove(collector)
        if args.outage:
            watcher.join(60)
        app.stop()
        broker.cleanup()
        cleanup.close()
    if args.outage:
        report_outage(outage, stored_at, stored_lat)
    half = f", half the sustained {sustained:.0f} msg/s of this stream" if sustained else ""
    print(f"\nlive stream at {rate:.0f} msg/s ({len(stored_lat)} readings{half}):")
    # The first pass over the gauges ends when its last reading is stored.
    warm = stored_at[min(len(devices), len(stored_at)) - 1]
    for name, lats, at, what in (
        ("publish → stored", stored_lat, stored_at, "readings"),
        ("publish → case in outbox", case_lat, case_at, "cases; target p99 ≤ 100 ms"),
    ):
        later = [lat for lat, t in zip(lats, at, strict=True) if t > warm]
        for part, xs in (("whole run", lats), ("after the first pass", later)):
            print_latency(f"{name:25s} {part:21s}", xs, what)
    print(f"  collections while the stream ran (this process): {collector.report()}")
    for end, took in collector.at:
        # What a pause of the oldest generation did to the cases filed just after it.
        near = [lat for lat, t in zip(case_lat, case_at, strict=True) if end <= t <= end + 0.5]
        worst = f", the worst case filed in the next 0.5 s waited {max(near) * 1000:.1f} ms" if near else ""
        print(f"    a full collection of {took * 1000:.1f} ms{worst}")
    shutil.rmtree(tmp, ignore_errors=True)


class CollectorPauses:
    """The cyclic collector's pauses while a stream runs, by generation (a ``gc.callbacks``
    entry): whether a latency percentile is the pipeline's work or a collection it waited for."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.at: list[tuple[float, float]] = []  # (end, seconds) of each collection of the oldest generation

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.started = now
            return
        self.pauses[info["generation"]].append(now - self.started)
        if info["generation"] == 2:
            self.at.append((time.time(), now - self.started))

    def total(self) -> float:
        """Seconds in collections so far, every generation."""
        return sum(sum(xs) for xs in self.pauses.values())

    def report(self) -> str:
        parts = []
        for gen, xs in self.pauses.items():
            if xs:
                longest = max(xs) * 1000
                parts.append(f"generation {gen}: {len(xs)}, longest {longest:.1f} ms, {sum(xs):.2f} s in all")
        return "; ".join(parts) or "none"


def print_latency(label: str, latencies: list[float], what: str) -> None:
    """One line: p50 and p99 of ``latencies`` (seconds) in ms, if there are enough to say."""
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100)
        print(
            f"  {label} p50 {q[49] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms   ({len(latencies)} {what})"
        )


def report_outage(outage: dict[str, float], stored_at: list[float], stored_lat: list[float]) -> None:
    """Publish → stored while the platform's backlog drains, against the rest of the same run."""
    if "drained" not in outage:
        print(f"\nthe outbox backlog did not drain before the stream ended: {outage}")
        return
    up, drained = outage["up"], outage["drained"]
    during = [lat for at, lat in zip(stored_at, stored_lat, strict=True) if up <= at <= drained]
    rest = [lat for at, lat in zip(stored_at, stored_lat, strict=True) if not up <= at <= drained]
    print(
        f"\nplatform back after the outage: {outage['backlog']:.0f} cases and updates waiting,"
        f" all delivered {drained - up:.2f} s later (the breaker's probe included)"
    )
    for name, lats in (("during the drain", during), ("rest of the run", rest)):
        print_latency(f"publish → stored, {name:17s}", lats, "readings")


def run_memory(counts: list[int]) -> None:
    """RSS growth per active gauge: one reading per gauge through the pipeline's batch handler.

    Each fleet size runs in a fresh process (memory freed by one run would hide the next
    one's growth), and the baseline is taken after the first batch, so the store's page
    cache and first-use allocations are not charged to the gauges.
    """
    from ingest.contract import InboundMessage

    if len(counts) > 1:
        for n in counts:
            cmd = [sys.executable, __file__, "--skip-throughput", "--memory-child", "--memory", str(n)]
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        return
    for n in counts:
        tmp = Path(tempfile.mkdtemp(prefix="gridsense-mem-"))
        grids, devices_csv, devices = write_registry(tmp, n, max(10, n // 10))
        cfg = GridsenseConfig(
            registry=RegistryConfig(grids=grids, devices=devices_csv),
            store=StoreConfig(path=tmp / "m.db"),
            cameras=CameraConfig(enabled=False),
        )
        app = App(cfg)
        base, first = 0, 0
        now = datetime.now(UTC)
        batch = []
        for i, (dev, grid) in enumerate(devices):
            kind = Kind.WATER if dev.startswith("w") else Kind.RAIN
            s = Sample(
                dev, kind, now - timedelta(minutes=5), "level" if kind is Kind.WATER else "amount", 0.2, 90.0
            )
            batch.append(InboundMessage(f"city/{grid[:6]}/{grid}/{kind.value}/{dev}", encode_json(s), now))
            if len(batch) == 2000 or i == len(devices) - 1:
                app.pipeline.handle(batch)
                batch = []
                if not base:
                    base, first = _rss(), i + 1
        grown = _rss() - base
        counted = n - first
        print(
            f"  {n:>7} active gauges: RSS +{grown / 1e6:7.1f} MB over the last {counted} ="
            f" {grown / counted:6.0f} B per gauge (target ≤ 2048; window state alone"
            f" {app.pipeline._engine.state_bytes() / n:.0f} B)",
            flush=True,
        )
        app.conn.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--grids", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--influx", action="store_true", help="also write through the spool to VictoriaMetrics")
    ap.add_argument(
        "--latency",
        type=float,
        nargs="?",
        const=-1.0,
        default=0.0,
        help="live stream rate (msg/s) for latency; without a value, half the measured sustained rate",
    )
    ap.add_argument(
        "--outage",
        type=float,
        default=0.0,
        help="with --latency: the case platform is down for the stream's first SECONDS; reports"
        " publish → stored while the backlog drains",
    )
    ap.add_argument("--memory", type=int, nargs="*", help="RSS per gauge for these fleet sizes")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--no-workers", action="store_true", help="skip the 1 → 2 worker processes speed-up")
    ap.add_argument(
        "--pairs-only",
        action="store_true",
        help="only the clean, 5 %% malformed and all-malformed drains, three a round: the malformed"
        " bound over many rounds, and a bad message's cost against a good one's",
    )
    ap.add_argument(
        "--interleaved",
        action="store_true",
        help="only drains of a stream whose passes over the gauges are clean and 5 %% malformed in"
        " turn: the malformed bound within each drain (--messages 200000: 20 passes)",
    )
    ap.add_argument(
        "--control",
        action="store_true",
        help="with --interleaved: no bad message in any run, so the method's own bias shows (1.00 if none)",
    )
    ap.add_argument(
        "--no-deadletter-feed",
        dest="feed",
        action="store_false",
        help="drains without the live dead-letter feed (mqtt.publish_deadletters: false)",
    )
    ap.add_argument(
        "--whole-deadletter-feed",
        dest="feed_budget",
        action="store_false",
        help="drains whose live dead-letter feed carries every letter (mqtt.deadletter_feed_per_s: null)",
    )
    ap.add_argument(
        "--worker-messages",
        type=int,
        default=400_000,
        help="the workers' stream: long enough that polling their stores times it to a few per cent",
    )
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.skip_throughput:
        run_throughput(args)
    if args.latency:
        run_latency(args, args.latency)
    if args.memory:
        if not args.memory_child:
            print("\nmemory:", flush=True)
        run_memory(args.memory)


if __name__ == "__main__":
    main()
