"""InfluxDB line protocol for readings as the spool stores them (``reading_store.COLUMNS``).

The spool forwarder sends thousands of lines a second, so the line is built straight from
the row, without ``influxdb_client.Point``; tests/ingest/test_influx_sink.py holds it
byte-equal to what influxdb-client serialises for the same reading. A module of its own,
with no client library in it. Compiled with mypyc (with the spool) it made no difference
the ingest bench could see (``--influx``, one run each: 33,566 msg/s compiled, 33,927 not),
so it ships as plain Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

#: What line protocol escapes in a tag key or value and in a field key (as influxdb-client does).
_ESCAPE_TAG: Final = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_MEASUREMENT: Final = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})

#: A reading as ``reading_store.COLUMNS``: the store's tuple, or the list the spool's JSON gives
#: back (device_id, ts_ms, kind, grid_code, value, counter, battery, suspect).
Row = Sequence[Any]


#: Any character that would need escaping in a tag value (or a trailing backslash).
_UNSAFE_TAG: Final = re.compile(r"[,= \n\t\r\\]")


def _tag(value: str) -> str:
    escaped = value.translate(_ESCAPE_TAG)
    return escaped + " " if escaped.endswith("\\") else escaped


def _number(v: float) -> str | None:
    if v - v != 0.0:  # inf or NaN: influxdb-client leaves the field out
        return None
    s = str(float(v))
    return s[:-2] if s.endswith(".0") else s


def to_line(row: Row, measurement: str = "reading") -> str:
    """The line ``to_point`` would serialise for the same reading, built straight from its row.

    The spool forwarder sends thousands of these a second: ``Point`` objects cost it about
    30 µs a reading (envelope, point, serialiser), this about 3. tests/ingest/test_influx_sink.py
    holds the two byte-equal.
    """
    return _line(row, measurement.translate(_ESCAPE_MEASUREMENT))


def _line(row: Row, measurement: str) -> str:
    """``to_line`` with the measurement already escaped (once per batch, not per line).

    Registry ids never need escaping, so one search over the three tags decides, and the
    line is then a single f-string: a call per tag and field cost three times as much.
    """
    device_id, ms, kind, grid_code, value, counter, battery, suspect = row
    if _UNSAFE_TAG.search(device_id + grid_code + kind) is None:
        head = (
            f"{measurement},device_id={device_id},district={grid_code[:6]},grid_code={grid_code},kind={kind}"
        )
    else:
        head = (
            f"{measurement},device_id={_tag(device_id)},"
            f"district={_tag(grid_code[:6])},grid_code={_tag(grid_code)},kind={_tag(kind)}"
        )
    fields = ""
    if battery is not None and (text := _number(battery)) is not None:
        fields = f"battery={text},"
    if counter is not None and (text := _number(counter)) is not None:
        fields += f"counter={text},"
    fields += "suspect=true" if suspect else "suspect=false"
    if (text := _number(value)) is not None:
        fields += f",value={text}"
    return f"{head} {fields} {ms}"


def lines(rows: Sequence[Row], measurement: str = "reading") -> str:
    """The rows as one line-protocol body, a line each."""
    escaped = measurement.translate(_ESCAPE_MEASUREMENT)
    return "\n".join([_line(r, escaped) for r in rows])
