"""How the operations page copes with a city-sized registry (35,000 grids by default).

    python bench/ops_page_load.py [--grids 35000] [--no-browser]

Server side, the SVG map is built once per registry; its cost is compared with a baseline
taken in the same run: serialising the same polygons to JSON (what any client-side map
would be sent instead). The map state (one character per grid, from the last hour of
readings, open incidents and open cases) is what is rebuilt while data flows; it is timed
against a store holding one reading per grid every 5 minutes for the last hour.

In the browser (Debian's Chromium through Playwright, when both are installed): time to
first paint and first contentful paint, the time until the script has coloured the map,
and the time to apply a state in which every grid changed. Numbers are printed, never
asserted: wall-clock time depends on the machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gridsense import db
from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device, DeviceRegistry, Grid, GridRegistry
from gridsense.ops.gridmap import build_map, map_state
from gridsense.ops.rain import recent_data
from gridsense.progress import Progress
from gridsense.txn import transaction
from ingest.reading_store import COLUMNS, ReadingStore

CENTRE = (39.91, 116.40)  # Tiananmen, roughly


def city(n: int, seed: int = 1) -> tuple[GridRegistry, DeviceRegistry]:
    """``n`` irregular hexagon-ish grids filling an ellipse around Beijing, one rain gauge each.

    Codes follow the real layout: district (6) + street (3) + community (3) + serial (3);
    a street is a 16 × 16 block of cells, a community 4 × 4, a district 64 × 64.
    """
    rng = random.Random(seed)
    # The ellipse u² + 1.2 v² ≤ 1 covers π / (4 √1.2) of the square around it.
    side = math.ceil(math.sqrt(n * 4 * math.sqrt(1.2) / math.pi)) + 2
    cell_lat = 0.0032  # about 350 m
    cell_lon = cell_lat / math.cos(math.radians(CENTRE[0]))
    cells = []
    for i in range(side):
        for j in range(side):
            u, v = (i + 0.5) / side * 2 - 1, (j + 0.5) / side * 2 - 1
            if u * u + v * v * 1.2 <= 1.0:
                cells.append((i, j))
    cells.sort(key=lambda c: (c[0] // 64, c[1] // 64, c[0] // 16, c[1] // 16, c[0] // 4, c[1] // 4, c))
    cells = cells[:n]
    grids: dict[str, Grid] = {}
    devices: dict[str, Device] = {}
    streets: dict[tuple[int, int], int] = {}
    communities: dict[tuple[int, int], int] = {}
    serials: dict[tuple[int, int], int] = {}
    districts: dict[tuple[int, int], int] = {}
    street_count: dict[tuple[int, int], int] = {}  # streets so far per district
    community_count: dict[tuple[int, int], int] = {}  # communities so far per street
    with Progress(len(cells), "registry") as bar:
        for i, j in cells:
            dkey = (i // 64, j // 64)
            district = 110101 + districts.setdefault(dkey, len(districts))
            skey = (i // 16, j // 16)
            if skey not in streets:
                streets[skey] = street_count[dkey] = street_count.get(dkey, 0) + 1
            street = streets[skey]
            ckey = (i // 4, j // 4)
            if ckey not in communities:
                communities[ckey] = community_count[skey] = community_count.get(skey, 0) + 1
            community = communities[ckey]
            serial = serials[ckey] = serials.get(ckey, 0) + 1
            code = f"{district:06d}{street:03d}{community:03d}{serial:03d}"
            lat = CENTRE[0] + (side / 2 - i) * cell_lat
            lon = CENTRE[1] + (j - side / 2) * cell_lon
            ring = tuple(
                (
                    lat + math.sin(a) * cell_lat * 0.5 * rng.uniform(0.9, 1.02),
                    lon + math.cos(a) * cell_lon * 0.5 * rng.uniform(0.9, 1.02),
                )
                for a in (k * math.pi / 3 + math.pi / 6 for k in range(6))
            )
            grids[code] = Grid(
                grid_code=code,
                street_name=f"街道{district % 100:02d}-{street:03d}",
                community_name=f"社区{community:03d}",
                lat=lat,
                lon=lon,
                polygon=ring,
            )
            dev = f"rg-{code[6:]}-{district % 100:02d}"
            devices[dev] = Device(
                device_id=dev, kind=Kind.RAIN, grid_code=code, lat=lat, lon=lon, interval_s=300
            )
            bar.advance()
    return GridRegistry(grids), DeviceRegistry(devices)


def best_of(fn: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fill_store(path: Path, devices: DeviceRegistry, grids: GridRegistry) -> int:
    """One reading per gauge every 5 min for the last hour; a storm with incidents and cases."""
    conn = db.connect(path)
    now = int(time.time() * 1000)
    rows = []
    storm = {g.grid_code for k, g in enumerate(grids) if k % 97 == 0}
    for d in devices:
        for m in range(12):
            heavy = d.grid_code in storm
            rows.append(
                (d.device_id, now - m * 300_000, "rain", d.grid_code, 9.0 if heavy else 0.2, None, 95.0, 0)
            )
    with transaction(conn):  # one commit: the store's connections are in autocommit mode
        conn.executemany(f"INSERT INTO readings_recent ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)
        ReadingStore(conn).settle(now - 600_000)  # as in service: the last minutes not yet settled
        for k, code in enumerate(sorted(storm)):
            level = ("blue", "yellow", "orange", "red")[k % 4]
            conn.execute(
                "INSERT INTO incidents VALUES (?,?,?,?,?,?,?,?,NULL,?,?,?,?,?)",
                (
                    f"inc-{k}",
                    "event:0111",
                    code,
                    code,
                    "event:0111",
                    "sensor",
                    "2026-07-21T08:00:00+00:00",
                    "2026-07-21T08:00:00+00:00",
                    level,
                    100.0,
                    "mm",
                    3600,
                    "{}",
                ),
            )
            if k % 3 == 0:
                conn.execute(
                    "INSERT INTO cases (case_key, incident_id, grid_code, category_code, title, filed_at,"
                    " deadline) VALUES (?,?,?,?,?,?,?)",
                    (
                        f"gs-bench-{k:08d}",
                        f"inc-{k}",
                        code,
                        "event:0111",
                        "bench",
                        "2026-07-21T16:00:00+08:00",
                        "2026-07-21T18:00:00+08:00",
                    ),
                )
    conn.close()
    return len(rows)


def browser_timings(url: str, screenshot: Path | None = None) -> dict[str, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser: playwright not installed (pip install playwright); skipped")
        return None
    if not Path("/usr/bin/chromium").exists():
        print("browser: /usr/bin/chromium missing (apt-get install -y chromium); skipped")
        return None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=flags,
            viewport={"width": 1920, "height": 1080},
        )
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        out["ready_wall_s"] = time.perf_counter() - t0
        perf = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const paint = Object.fromEntries(
                performance.getEntriesByType('paint').map(p => [p.name, p.startTime]));
              return {response_end: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd,
                      load: nav.loadEventEnd, first_paint: paint['first-paint'] ?? -1,
                      first_contentful_paint: paint['first-contentful-paint'] ?? -1,
                      transfer_bytes: nav.transferSize, body_bytes: nav.decodedBodySize};
            }"""
        )
        out.update({k: float(v) for k, v in perf.items()})
        if screenshot is not None:
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot))
        out["apply_all_changed_ms"] = page.evaluate(
            """() => {
              const n = document.querySelectorAll('#grids path').length;
              const s = Array.from({length: n}, (_, i) => '0123456'[i % 7]).join('');
              const t0 = performance.now();
              window.opsWall.applyState(s);
              document.body.getBoundingClientRect();
              return new Promise(r => requestAnimationFrame(() => r(performance.now() - t0)));
            }"""
        )
        ctx.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grids", type=int, default=35_000)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--screenshot", type=Path, help="save the loaded page as a PNG here")
    args = ap.parse_args()

    grids, devices = city(args.grids)
    print(f"registry   {len(grids)} grids, {len(devices)} gauges")
    polygons = [[g.grid_code, [list(p) for p in g.polygon]] for g in grids]
    json_s = best_of(lambda: json.dumps(polygons, separators=(",", ":")))
    svg_s = best_of(lambda: build_map(grids))
    gm = build_map(grids)
    svg_b = str(gm.svg).encode()
    json_b = json.dumps(polygons, separators=(",", ":")).encode()
    print(
        f"svg build  {svg_s * 1000:8.1f} ms   baseline json.dumps of the same polygons"
        f" {json_s * 1000:8.1f} ms   ratio {svg_s / json_s:5.2f}"
    )
    print(
        f"bytes      svg {len(svg_b) / 1e6:6.2f} MB (gzip {len(gzip.compress(svg_b, 6)) / 1e6:5.2f} MB)"
        f"   json {len(json_b) / 1e6:6.2f} MB (gzip {len(gzip.compress(json_b, 6)) / 1e6:5.2f} MB)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        n = fill_store(store, devices, grids)
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        at = int(time.time() * 1000)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            st = map_state(conn, gm, recent_data(conn, at))
            times.append(time.perf_counter() - t0)
        conn.close()
        print(
            f"map state  {min(times) * 1000:8.1f} ms (median {statistics.median(times) * 1000:.1f})"
            f" over {n} readings in the last hour; states {st.counts}, {st.open_case_grids} grids with a case"
        )
        if args.no_browser:
            return 0
        from gridsense.ops.app import create_ops_app
        from gridsense.ops.server import OpsServer
        from gridsense.ops.source import StoreSource

        t0 = time.perf_counter()
        app = create_ops_app(StoreSource(grids, devices, store))
        print(f"app build  {(time.perf_counter() - t0) * 1000:8.1f} ms (map built once per registry)")
        with OpsServer(app) as server:
            time.sleep(1.5)  # let the feed build its first map state
            timings = browser_timings(server.url + "/", args.screenshot)
        if timings:
            print(
                f"browser    first paint {timings['first_paint']:.0f} ms, first contentful paint "
                f"{timings['first_contentful_paint']:.0f} ms, response end {timings['response_end']:.0f} ms,"
                f" DOMContentLoaded {timings['dom_content_loaded']:.0f} ms, map coloured (ready) "
                f"{timings['ready_wall_s'] * 1000:.0f} ms wall"
            )
            print(
                f"           transfer {timings['transfer_bytes'] / 1e6:.2f} MB"
                f" (body {timings['body_bytes'] / 1e6:.2f} MB);"
                f" re-colour all {len(grids)} grids {timings['apply_all_changed_ms']:.0f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
