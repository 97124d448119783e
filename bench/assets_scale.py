"""The asset stage at city scale: a 1.4-million-asset registry (Beijing has ~1.37 M components).

Measures, each against a baseline taken in the same run, as BENCHMARKING.md asks:

- load: ``AssetRegistry.load`` of a GCJ-02 CSV, grid cross-check on, in a fresh process
  (wall time and peak RSS); baseline: a bare ``csv.reader`` pass over the same file;
- verify: ``AssetHandler.prepare`` of pings carrying the scanned payload (JSON decode, tag
  signature, registry lookup, maintainer, distance); baseline: ``orjson.loads`` alone;
- sweep: ``OverdueInspections.run`` over all assets, cold (first run after a start: reads
  every last-scan row) and warm (the next run); baseline: one numpy comparison over the
  same columns.

Targets from the issue: load ≤ 30 s, memory ≤ 1.5 GB, verify ≤ 50 µs, sweep ≤ 5 s.
Never asserted anywhere: this prints figures.

    .venv/bin/python bench/assets_scale.py [--assets 1400000] [--keep DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_GRIDS = 35_413  # Beijing's central districts, 2013
MIX = [("manhole_cover", "0101", 0.40), ("manhole_cover", "0102", 0.30), ("manhole_cover", "0103", 0.255)]
MIX += [("ancient_tree", "0401", 0.025), ("newsstand", "0121", 0.01), ("breakfast_cart", "0720", 0.01)]
KEY = {"id": "B1", "secret": "benchmark-key-" + "x" * 40, "state": "sign"}
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


def grid_code(i: int) -> str:
    # 110102 district, 3-digit street, 3-digit community, 3-digit grid: unique per i
    return f"110102{i // 10_000:03d}{(i // 100) % 100:03d}{i % 100:03d}"


def grid_point(i: int) -> tuple[float, float]:
    return 39.80 + (i // 200) * 0.0018, 116.20 + (i % 200) * 0.0022


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """A grid registry (WGS-84) and an asset registry (GCJ-02, as copied from a web map)."""
    grids, assets = folder / "grids.csv", folder / "assets.csv"
    if grids.exists() and assets.exists() and sum(1 for _ in assets.open()) == n + 2:
        return grids, assets
    with grids.open("w", encoding="utf-8") as f:
        f.write("# crs: wgs84\ngrid_code,street_name,community_name,lat,lon\n")
        for i in range(N_GRIDS):
            lat, lon = grid_point(i)
            f.write(f"{grid_code(i)},街道{i // 10_000},社区{(i // 100) % 100},{lat:.6f},{lon:.6f}\n")
    rng = random.Random(1)
    serial: dict[str, int] = {}
    with assets.open("w", encoding="utf-8") as f:
        f.write("# crs: gcj02\n")
        f.write("code,type,name,grid_code,lat,lon,owner,grade,permit_id,permit_places,permit_hours\n")
        weights = [w for _, _, w in MIX]
        for _ in range(n):
            t, cls, _ = rng.choices(MIX, weights)[0]
            serial[cls] = serial.get(cls, 0) + 1
            g = rng.randrange(N_GRIDS)
            glat, glon = grid_point(g)
            lat, lon = glat + rng.uniform(-0.0008, 0.0008), glon + rng.uniform(-0.001, 0.001)
            code = f"110102{cls}{serial[cls]:06d}"
            grade = rng.choice(["一级", "二级"]) if t == "ancient_tree" else ""
            permit = f"P-{serial[cls]},{lat:.6f} {lon:.6f} r30,06:00-10:00" if t == "breakfast_cart" else ",,"
            where = f"{grid_code(g)},{lat:.6f},{lon:.6f}"
            f.write(f"{code},{t},{t}{serial[cls]},{where},养护单位{g % 50},{grade},{permit}\n")
    return grids, assets


# --- load, in a fresh process ------------------------------------------------------------

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
mode, grids_path, assets_path = sys.argv[1:4]
from gridsense.model.registry import GridRegistry
from rules.assets.config import default_types
from rules.assets.registry import AssetRegistry
import csv
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
if mode == "baseline":
    with open(assets_path, encoding="utf-8") as f:
        n = sum(1 for _ in csv.reader(f))
else:
    grids = GridRegistry.load(Path(grids_path))
    t, c = time.perf_counter(), time.process_time()
    n = len(AssetRegistry.load(Path(assets_path), default_types(), grids))
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"s": elapsed, "cpu_s": cpu, "n": n, "rss_mb": rss / 1024, "rss0_mb": rss0 / 1024}}))
"""


def load_in_child(mode: str, grids: Path, assets: Path) -> dict[str, float]:
    code = CHILD.format(root=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code, mode, str(grids), str(assets)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- verify and sweep, in this process ---------------------------------------------------


def bench_verify(stage, n_pings: int, repeat: int) -> tuple[float, float, float, int]:
    import orjson

    from gridsense.model.geo import CRS, from_wgs84
    from ingest.contract import InboundMessage
    from ingest.topics import TopicScheme
    from rules.assets.ping_codec import encode_ping

    reg = stage.registry
    rng = random.Random(2)
    scheme = TopicScheme("city")
    fixed = [
        i
        for i in rng.sample(range(len(reg)), n_pings * 2)
        if reg.types[reg.type_names[reg.type_idx[i]]].mobile is False
    ]
    msgs = []
    for k, i in enumerate(fixed[:n_pings]):
        a = reg.asset(i)
        lat, lon = from_wgs84(a.lat, a.lon, CRS.WGS84)
        payload = encode_ping(
            maintainer="bench-1",
            ts=NOW - timedelta(seconds=k),
            qr=stage.keyring.sign(a.asset_id),
            lat=lat + rng.uniform(-5e-5, 5e-5),
            lon=lon + rng.uniform(-5e-5, 5e-5),
            accuracy_m=8.0,
            ping_id=f"bench-{k:08d}",
        )
        topic = scheme.topic(a.grid_code, "asset", a.asset_id)
        msgs.append((InboundMessage(topic, payload, NOW), scheme.parse(topic)))
    prepare = stage.handler.prepare
    full, cpu, base = [], [], []
    for _ in range(repeat):
        t = time.perf_counter()
        for msg, _parsed in msgs:
            orjson.loads(msg.payload)
        base.append((time.perf_counter() - t) / len(msgs) * 1e6)
        t, c = time.perf_counter(), time.process_time()
        for msg, parsed in msgs:
            prepare(msg, parsed, NOW)
        full.append((time.perf_counter() - t) / len(msgs) * 1e6)
        cpu.append((time.process_time() - c) / len(msgs) * 1e6)
    assert not any(k.startswith("rejected") for k in stage.handler.counters), stage.handler.counters
    return statistics.median(full), statistics.median(cpu), statistics.median(base), len(msgs)


def bench_sweep(stage, cfg, overdue_share: float) -> dict[str, float]:
    import numpy as np

    from gridsense.model.timekeys import epoch_ms
    from rules.assets.overdue import OverdueInspections
    from rules.assets.store import SCHEMA

    reg = stage.registry
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA)
    rng = np.random.default_rng(3)
    now_ms = epoch_ms(NOW)
    # Every asset scanned once; a share of them longer ago than their interval.
    age = rng.uniform(0, 0.9, len(reg)) * reg.interval_s * 1000
    late = rng.random(len(reg)) < overdue_share
    age[late] = reg.interval_s[late] * 1000 * rng.uniform(1.01, 2.0, int(late.sum()))
    last = (now_ms - age).astype(np.int64)
    rows = zip(reg.code.tolist(), last.tolist(), range(1, len(reg) + 1), strict=True)
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO asset_last_scan (asset_id, last_valid_ms, seq) VALUES (?,?,?)", rows)
    conn.execute("COMMIT")
    setup = time.perf_counter() - t
    job = OverdueInspections(cfg, reg)
    out: dict[str, float] = {"setup_s": setup, "expected_overdue": int((late & reg.active).sum())}
    for name in ("cold", "warm"):
        t, c = time.perf_counter(), time.process_time()
        conn.execute("BEGIN")
        changes = job.run(conn, NOW)
        conn.execute("COMMIT")
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"{name}_cpu_s"] = time.process_time() - c
        out[f"{name}_opened"] = len(changes)
    t = time.perf_counter()
    for _ in range(5):
        int(np.count_nonzero(reg.active & (last + reg.interval_s * 1000 < now_ms)))
    out["baseline_s"] = (time.perf_counter() - t) / 5
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assets", type=int, default=1_400_000)
    p.add_argument("--keep", type=Path, help="folder to keep the generated registries in between runs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--pings", type=int, default=20_000)
    args = p.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="assets-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    grids, assets = generate(folder, args.assets)
    print(
        f"registries in {folder} ({args.assets:,} assets, {N_GRIDS:,} grids; {time.perf_counter() - t:.1f} s)"
    )

    loads, bases = [], []
    for _ in range(args.repeat):  # A B A B …
        loads.append(load_in_child("load", grids, assets))
        bases.append(load_in_child("baseline", grids, assets))
    load_s = statistics.median(r["s"] for r in loads)
    load_cpu = statistics.median(r["cpu_s"] for r in loads)
    base_s = statistics.median(r["s"] for r in bases)
    rss = statistics.median(r["rss_mb"] for r in loads)
    rss0 = statistics.median(r["rss0_mb"] for r in loads)
    print(
        f"load    {load_s:6.1f} s wall, {load_cpu:.1f} s CPU "
        f"(csv.reader pass {base_s:.1f} s: ×{load_s / base_s:.1f})  target ≤ 30 s"
    )
    print(f"memory  {rss:6.0f} MB peak RSS of the loading process (imports {rss0:.0f} MB)  target ≤ 1536 MB")

    from gridsense.model.registry import GridRegistry
    from rules.assets.config import AssetConfig
    from rules.assets.maintainers import Maintainer, MaintainerRegistry
    from rules.assets.registry import AssetRegistry
    from rules.assets.stage import build_asset_stage

    cfg = AssetConfig.model_validate({"enabled": True, "keyring": [KEY], "max_age_s": 30 * 86400})
    grid_reg = GridRegistry.load(grids)
    registry = AssetRegistry.load(assets, cfg.types, grid_reg)
    bench_maintainer = Maintainer(
        maintainer_id="bench-1", name="测试", role="maintainer", unit="u", types=("*",), areas=("110102",)
    )
    people = MaintainerRegistry({"bench-1": bench_maintainer})
    stage = build_asset_stage(cfg, grid_reg, 1_000_000, registries=(registry, people))
    us, cpu_us, base_us, n = bench_verify(stage, args.pings, args.repeat)
    print(
        f"verify  {us:6.1f} µs wall, {cpu_us:.1f} µs CPU per ping with payload, {n:,} pings "
        f"(orjson.loads alone {base_us:.1f} µs: ×{us / base_us:.0f})  target ≤ 50 µs"
    )

    sweep = bench_sweep(stage, cfg, overdue_share=0.005)
    print(
        f"sweep   {sweep['cold_s']:6.2f} s wall, {sweep['cold_cpu_s']:.2f} s CPU cold (reads all "
        f"{len(registry):,} last scans, opens {sweep['cold_opened']:,} of "
        f"{sweep['expected_overdue']:,} overdue); "
        f"{sweep['warm_s']:.3f} s warm ({sweep['warm_opened']} new); "
        f"bare numpy pass {sweep['baseline_s'] * 1000:.1f} ms  target ≤ 5 s"
    )
    rss_now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process peaked at {rss_now:.0f} MB: registry, pings and a {len(registry):,}-row store)")
    print(f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall figures include it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
