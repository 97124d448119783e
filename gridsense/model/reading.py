"""Reading: one normalised gauge reading, the record every stage after the normaliser carries.

A plain class, not a pydantic model, and compiled with the ingest hot path
(``gridsense/hot_path.py``), where mypyc makes it a C struct: one allocation a reading and
attribute reads that are a field load. Each reading is built once and read some twenty
times (rules, store, spool); as a pydantic model the construction alone was 7 % of the batch
handler's instructions and every field read went through pydantic's ``__getattr__`` hook
(callgrind over the compiled handler).

It is a record of data that was checked before it was built, not a validator: the codec
checks the wire (finite numbers, battery range, a zone on the timestamp), the normaliser
checks the device against the registry and the topic, and the store gives back only what
was stored. Untrusted input never reaches this constructor without passing through one of
them. The one check kept here is the one its own arithmetic needs: a timestamp without a
zone has no epoch key.

Treat it as immutable: ``as_suspect`` returns a flagged copy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from gridsense.model.envelopes import Kind
from gridsense.model.timekeys import epoch_ms

#: The fields, in constructor order (``fields``, equality, ``repr``); ``ts_ms`` is derived.
FIELDS: Final = (
    "device_id",
    "kind",
    "grid_code",
    "ts",
    "value",
    "unit",
    "counter",
    "battery",
    "update_interval_s",
    "suspect",
)


class Reading:
    """One gauge reading. ``value`` is in the kind's canonical unit (``CANONICAL_UNIT``).

    For rain it is the amount fallen in the interval ending at ``ts``; ``counter`` keeps the
    raw tipping-bucket total (mm) when the gauge sent one, so the next interval can be
    derived and a reset detected. ``update_interval_s`` is SenML's ``ut``, if sent.
    ``ts_ms`` is ``ts`` as the integer key the store and the sink file it under
    (``epoch_ms``), worked out once here.
    """

    device_id: str
    kind: Kind
    grid_code: str
    ts: datetime
    value: float
    unit: str
    counter: float | None
    battery: float | None
    update_interval_s: float | None
    suspect: bool
    ts_ms: int

    def __init__(
        self,
        device_id: str,
        kind: Kind,
        grid_code: str,
        ts: datetime,
        value: float,
        unit: str,
        counter: float | None = None,
        battery: float | None = None,
        update_interval_s: float | None = None,
        suspect: bool = False,
        ts_ms: int | None = None,
    ) -> None:
        """``ts_ms``: the caller's ``epoch_ms(ts)``, when it has already worked it out."""
        if ts.tzinfo is None:
            raise ValueError(f"reading {device_id} at {ts}: the timestamp must carry a timezone")
        self.device_id = device_id
        self.kind = kind
        self.grid_code = grid_code
        self.ts = ts
        self.value = value
        self.unit = unit
        self.counter = counter
        self.battery = battery
        self.update_interval_s = update_interval_s
        self.suspect = suspect
        self.ts_ms = epoch_ms(ts) if ts_ms is None else ts_ms

    def as_suspect(self) -> Reading:
        """This reading flagged as one the gauge cannot physically produce (a copy)."""
        return Reading(
            self.device_id,
            self.kind,
            self.grid_code,
            self.ts,
            self.value,
            self.unit,
            self.counter,
            self.battery,
            self.update_interval_s,
            True,
            self.ts_ms,
        )

    def fields(self) -> dict[str, Any]:
        """The fields by name (``FIELDS``), as a pydantic model's ``model_dump`` gave them."""
        return {name: getattr(self, name) for name in FIELDS}

    def _values(self) -> tuple[object, ...]:
        """Every field and the key: a reading whose key does not match its time (a caller's
        ``ts_ms`` gone wrong) is not equal to the reading built from the same fields."""
        return (*[getattr(self, name) for name in FIELDS], self.ts_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reading):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS)
        return f"Reading({inner})"
