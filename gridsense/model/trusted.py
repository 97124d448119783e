"""``trusted_reading``: a ``Reading`` built on the ingest hot path without a second validation.

Kept out of ``gridsense.model.envelopes`` (whose pydantic classes the build cannot compile) so
that it is compiled with the hot path (``gridsense/hot_path.py``): it runs once a reading.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from gridsense.model.envelopes import Kind, Reading

_READING_FIELDS: Final = frozenset(Reading.model_fields)
_set: Final = object.__setattr__


def trusted_reading(
    device_id: str,
    kind: Kind,
    grid_code: str,
    ts: datetime,
    value: float,
    unit: str,
    counter: float | None,
    battery: float | None,
    update_interval_s: float | None,
    suspect: bool = False,
) -> Reading:
    """A ``Reading`` from fields the caller has already checked, built without validation.

    The ingest hot path checks every field itself (codec, registry, normaliser); pydantic's
    ``model_construct`` would still walk the field table for aliases and defaults, about
    5 µs a reading. This sets the same four attributes ``model_construct`` sets, for every
    field at once. tests/model/test_trusted_reading.py holds the two to the same result.
    """
    m = Reading.__new__(Reading)
    _set(
        m,
        "__dict__",
        {
            "device_id": device_id,
            "kind": kind,
            "grid_code": grid_code,
            "ts": ts,
            "value": value,
            "unit": unit,
            "counter": counter,
            "battery": battery,
            "update_interval_s": update_interval_s,
            "suspect": suspect,
        },
    )
    _set(m, "__pydantic_fields_set__", set(_READING_FIELDS))  # model_copy updates it
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m
