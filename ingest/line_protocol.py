"""InfluxDB line protocol for readings as the spool stores them (``reading_store.COLUMNS``).

The spool forwarder sends thousands of lines a second, so the line is built straight from
the row, without ``influxdb_client.Point``; tests/ingest/test_influx_sink.py holds it
byte-equal to what influxdb-client serialises for the same reading. A module of its own,
with no client library in it, compiled with mypyc with the ingest hot path
(``gridsense/hot_path.py``). Under callgrind a line of a rain reading (a fractional value,
a whole-number battery) cost 17,200 instructions plain and 12,700 compiled; with typed
items, whole numbers printed from the integer and the tag check done without a regular
expression, 8,400 compiled (16,800 plain).
"""

from __future__ import annotations

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


def _plain(tags: str) -> bool:
    """Whether no tag in ``tags`` (their concatenation) needs escaping: nothing line protocol
    escapes in a tag, and no backslash (a trailing one takes a space). A registry's ids and
    grid codes never do; seven ``in`` tests cost a third of a regular expression's search."""
    return not (
        "," in tags
        or "=" in tags
        or " " in tags
        or "\\" in tags
        or "\n" in tags
        or "\t" in tags
        or "\r" in tags
    )


def _tag(value: str) -> str:
    escaped = value.translate(_ESCAPE_TAG)
    return escaped + " " if escaped.endswith("\\") else escaped


#: Whole numbers below this print without an exponent (``repr`` switches at 1e16).
_WHOLE_MAX: Final = 1e15


def _number(v: float) -> str | None:
    """The field as influxdb-client writes it: ``str(float)`` without a trailing ``.0``."""
    if v - v != 0.0:  # inf or NaN: influxdb-client leaves the field out
        return None
    v = float(v)
    if -_WHOLE_MAX < v < _WHOLE_MAX:
        whole = int(v)
        # A battery's 87.0 prints as "87" from the integer, without the shortest-repr search
        # (``float.__repr__``, about 1,900 instructions); 0 stays on that path for -0.0's sign.
        if whole != 0 and float(whole) == v:
            return str(whole)
    s = str(v)
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

    Registry ids never need escaping, so one check over the three tags decides, and the
    line is then one f-string: a call per tag and field cost three times as much. The row's
    items are given their types first: compiled, a ``str`` is sliced, joined and formatted
    by its own C calls, where an untyped one goes through the generic protocols.
    """
    device_id_, ms_, kind_, grid_code_, value, counter, battery, suspect = row
    device_id: str = device_id_
    kind: str = kind_
    grid_code: str = grid_code_
    ms: int = ms_
    if _plain(device_id + grid_code + kind):
        head = f"{measurement},device_id={device_id},district={grid_code[:6]},grid_code={grid_code}"
    else:
        head = (
            f"{measurement},device_id={_tag(device_id)},"
            f"district={_tag(grid_code[:6])},grid_code={_tag(grid_code)}"
        )
        kind = _tag(kind)
    fields = "suspect=true" if suspect else "suspect=false"
    if counter is not None and (text := _number(counter)) is not None:
        fields = f"counter={text},{fields}"
    if battery is not None and (text := _number(battery)) is not None:
        fields = f"battery={text},{fields}"
    if (text := _number(value)) is not None:
        return f"{head},kind={kind} {fields},value={text} {ms}"
    return f"{head},kind={kind} {fields} {ms}"


def lines(rows: Sequence[Row], measurement: str = "reading") -> str:
    """The rows as one line-protocol body, a line each."""
    escaped = measurement.translate(_ESCAPE_MEASUREMENT)
    return "\n".join([_line(r, escaped) for r in rows])
