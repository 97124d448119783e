"""Rain replay from a SWMM input file and from CSV: each format, the file's quirks, errors with file:line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gridsense.errors import ConfigError
from gridsense.model.envelopes import Kind
from simulators.gauge_faults import GaugeSeries
from simulators.rain_replay import RainFormat, csv_rain_series, parse_swmm, swmm_rain_series

DATA = Path(__file__).parent / "data"
INP = DATA / "sag_storm.inp"
CSV = DATA / "gauge_log.csv"
CST = timezone(timedelta(hours=8))
T14 = datetime(2012, 7, 21, 14, 0, tzinfo=CST)
MAPPING = {
    "RG_XIHAI": "rg-xh-1",
    "RG_QIANHAI": "rg-qh-1",
    "RG_XINJIEKOU": "rg-xjk-1",
    "RG DESHENG": "rg-ds-1",
}
MIN5 = timedelta(minutes=5)
AT_1405 = "2026-07-21T14:05:00+08:00"


@pytest.fixture(scope="module")
def replay() -> dict[str, GaugeSeries]:
    return swmm_rain_series(INP, MAPPING)


def test_intensity_is_mm_per_hour_over_the_interval_with_dry_gaps(replay: dict[str, GaugeSeries]) -> None:
    s = replay["rg-xh-1"]
    assert (s.device_id, s.kind, s.start, s.step) == ("rg-xh-1", Kind.RAIN, T14, MIN5)
    # 12, 36, 60, 24 mm/h for 5 min; 14:20 not recorded (dry); 6 mm/h
    assert s.values == pytest.approx((1.0, 3.0, 5.0, 2.0, 0.0, 0.5))
    assert s.ends()[0] == T14 + MIN5  # a SWMM value stamped 14:00 is the rain of 14:00–14:05


def test_volume_is_mm_per_interval(replay: dict[str, GaugeSeries]) -> None:
    s = replay["rg-qh-1"]
    assert (s.start, s.values) == (T14, (1.0, 3.0, 5.0))


def test_cumulative_is_differenced_restarts_on_a_drop_has_scf(replay: dict[str, GaugeSeries]) -> None:
    s = replay["rg-xjk-1"]
    assert s.step == timedelta(minutes=10)
    # 2.0, +4.5, +0.5, dry, then the count restarts at 1.5; SCF 1.1
    assert s.values == pytest.approx((2.2, 4.95, 0.55, 0.0, 1.65))


def test_undated_series_counts_hours_from_the_start_date(replay: dict[str, GaugeSeries]) -> None:
    s = replay["rg-ds-1"]  # a quoted gauge name with a space; interval 0.25 h in decimal hours
    assert (s.start, s.step, s.values) == (T14, timedelta(minutes=15), (0.5, 2.0, 0.0, 1.25))
    moved = swmm_rain_series(INP, MAPPING, start=datetime(2026, 7, 1, tzinfo=UTC))["rg-ds-1"]
    assert moved.start == datetime(2026, 7, 1, tzinfo=UTC)


def test_parser_keeps_rows_comments_and_file_series_apart() -> None:
    swmm = parse_swmm(INP)
    assert set(swmm.gages) == set(MAPPING)
    assert swmm.gages["RG_XINJIEKOU"].fmt is RainFormat.CUMULATIVE
    assert swmm.gages["RG_XINJIEKOU"].line == 16
    assert [p.line for p in swmm.series["TS_INTENSITY"]] == [22, 23, 23, 24, 26]
    assert swmm.series_files == {"INFLOW_HYDRO": 39}
    assert (swmm.flow_units, swmm.start) == ("LPS", datetime(2012, 7, 21, 14, 0))


def test_us_flow_units_mean_inches(tmp_path: Path) -> None:
    inp = _inp(tmp_path, "FLOW_UNITS CFS", "RG1 VOLUME 1:00 1.0 TIMESERIES TS1", "TS1 01/01/2026 0:00 0.5")
    assert swmm_rain_series(inp, {"RG1": "rg-1"})["rg-1"].values == (12.7,)
    assert swmm_rain_series(inp, {"RG1": "rg-1"}, depth_unit="mm")["rg-1"].values == (0.5,)


def test_dates_are_local_time(tmp_path: Path) -> None:
    inp = _inp(tmp_path, "FLOW_UNITS LPS", "RG1 VOLUME 1:00 1.0 TIMESERIES TS1", "TS1 01/01/2026 0:00 0.5")
    assert swmm_rain_series(inp, {"RG1": "rg-1"}, tz=UTC)["rg-1"].start == datetime(2026, 1, 1, tzinfo=UTC)
    beijing = swmm_rain_series(inp, {"RG1": "rg-1"})["rg-1"].start
    assert beijing == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)


GAGE = "RG1 VOLUME 1:00 1.0 TIMESERIES TS1"
TO_A = {"RG1": "a"}
# Each case: gauge row (line 5), series rows (line 7), mapping, the line the error must name, a phrase.
ERRORS = [
    (GAGE, "TS1 0:00 1", {}, 5, "no device id"),
    ("RG1 VOLUME 1:00 1.0 FILE rain.dat STA1 MM", "TS1 0:00 1", TO_A, 5, "FILE"),
    (GAGE, "TS1 FILE ts1.dat", TO_A, 5, "FILE"),
    ("RG1 HOURLY 1:00 1.0 TIMESERIES TS1", "TS1 0:00 1", TO_A, 5, "HOURLY"),
    ("RG1 VOLUME 1:00 one TIMESERIES TS1", "TS1 0:00 1", TO_A, 5, "SCF"),
    ("RG1 VOLUME 1:00 1.0 TIMESERIES TS9", "TS1 0:00 1", TO_A, 5, "TS9"),
    (GAGE, "TS1 0:00 1 1:00 x", TO_A, 7, "'x'"),
    (GAGE, "TS1 0:00 1 0:00 2", TO_A, 7, "is not after"),
    (GAGE, "TS1 1/1/2026 0:00 1 0:30 2", TO_A, 7, "grid"),
    (GAGE, "TS1 1/1/2026 0:00 -1", TO_A, 7, "negative"),
    (GAGE, "TS1 13/40/2026 0:00 1", TO_A, 7, "date"),
    (GAGE, "TS1 0:00 1 1/2/2026 1:00 1", TO_A, 7, "mixes"),
    (GAGE, "TS1 0:00", TO_A, 7, "Name [Date]"),
    (GAGE, "TS1 0:00 1", TO_A, 7, "START_DATE"),
]


@pytest.mark.parametrize(("gage", "series", "mapping", "line", "phrase"), ERRORS)
def test_errors_name_the_file_and_line(
    tmp_path: Path, gage: str, series: str, mapping: dict[str, str], line: int, phrase: str
) -> None:
    inp = _inp(tmp_path, "FLOW_UNITS LPS", gage, series)
    with pytest.raises(ConfigError, match=f"^{inp}:{line}: .*{re.escape(phrase)}"):
        swmm_rain_series(inp, mapping)


def test_errors_without_a_line(tmp_path: Path) -> None:
    inp = _inp(tmp_path, "", "RG1 VOLUME 1:00 1.0 TIMESERIES TS1", "TS1 01/01/2026 0:00 1")
    with pytest.raises(ConfigError, match="FLOW_UNITS"):
        swmm_rain_series(inp, {"RG1": "a"})
    with pytest.raises(ConfigError, match=r"does not have: \['RG2'\]"):
        swmm_rain_series(inp, {"RG1": "a", "RG2": "b"}, depth_unit="mm")
    two = _inp(tmp_path, "FLOW_UNITS LPS", f"{GAGE}\n{GAGE.replace('RG1', 'RG2')}", "")
    with pytest.raises(ConfigError, match="same device"):
        swmm_rain_series(two, {"RG1": "a", "RG2": "a"})


def test_csv_replay_timestamps_mark_interval_ends() -> None:
    out = csv_rain_series(CSV, RainFormat.VOLUME, MIN5, {"XH-1": "rg-xh-1", "QH-1": "rg-qh-1"})
    t = datetime(2026, 7, 21, 14, 0, tzinfo=CST)
    assert (out["rg-xh-1"].start, out["rg-xh-1"].values) == (t, (0.5, 2.5, 0.0, 4.0))
    assert (out["rg-qh-1"].start, out["rg-qh-1"].values) == (t, (0.0, 1.0, 3.0))  # a zone-less row is local


def test_csv_intensity_and_cumulative_with_scf(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = [f"2026-07-21T14:{m}:00+08:00,G,{v}" for m, v in [("05", 12), ("10", 30), ("20", 6)]]
    path.write_text("timestamp,gauge,value\n" + "\n".join(rows) + "\n")
    intensity = csv_rain_series(path, RainFormat.INTENSITY, MIN5, {"G": "g"}, scf=2.0)["g"]
    assert intensity.values == pytest.approx((2.0, 5.0, 0.0, 1.0))
    cumulative = csv_rain_series(path, RainFormat.CUMULATIVE, MIN5, {"G": "g"})["g"]
    assert cumulative.values == pytest.approx((12.0, 18.0, 0.0, 6.0))  # 30 → 6 is a restart


@pytest.mark.parametrize(
    ("body", "mapping", "line", "phrase"),
    [
        ("time,gauge,value\n", {"G": "g"}, 1, "header"),
        ("timestamp,gauge,value\n2026-07-21T14:05:00+08:00,H,1\n", {"G": "g"}, 2, "no device id"),
        ("timestamp,gauge,value\n# note\n2026-07-21 14:05,G\n", {"G": "g"}, 3, "3 columns"),
        ("timestamp,gauge,value\n21/07/2026,G,1\n", {"G": "g"}, 2, "ISO-8601"),
        (f"timestamp,gauge,value\n{AT_1405},G,1\n2026-07-21T14:07:00+08:00,G,1\n", {"G": "g"}, 3, "grid"),
        (f"timestamp,gauge,value\n{AT_1405},G,1\n{AT_1405},G,1\n", {"G": "g"}, 3, "after"),
        ("timestamp,gauge,value\n2026-07-21T14:05:00+08:00,G,nan\n", {"G": "g"}, 2, "finite"),
    ],
)
def test_csv_errors_name_the_file_and_line(
    tmp_path: Path, body: str, mapping: dict[str, str], line: int, phrase: str
) -> None:
    path = tmp_path / "log.csv"
    path.write_text(body)
    with pytest.raises(ConfigError, match=f"^{path}:{line}: .*{re.escape(phrase)}"):
        csv_rain_series(path, RainFormat.VOLUME, MIN5, mapping)


def _inp(tmp_path: Path, options: str, gages: str, series: str) -> Path:
    """A minimal input file: options on line 2, the first gauge on line 5, the first series row on line 7."""
    path = tmp_path / "case.inp"
    path.write_text(f"[OPTIONS]\n{options}\n\n[RAINGAGES]\n{gages}\n[TIMESERIES]\n{series}\n")
    return path
