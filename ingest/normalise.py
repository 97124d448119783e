"""GaugeNormaliser: checks a decoded sample against its topic and the registry, and turns
tipping-bucket counters and rain rates into interval amounts.

State (each device's newest timestamp and counter) is rebuilt from the reading store on
start, so a restart does not count a counter's total twice.
"""

from __future__ import annotations

import math
from typing import Final

from gridsense.errors import Rejected
from gridsense.model.envelopes import CANONICAL_UNIT
from gridsense.model.reading import Reading
from gridsense.model.registry import DeviceRegistry
from gridsense.model.timekeys import epoch_ms
from ingest.gauge_codec import Sample
from ingest.topics import Topic

_UNIT: Final = CANONICAL_UNIT  # a C static once compiled, not a globals lookup a reading


class GaugeNormaliser:
    """Sample + topic → Reading, or ``Rejected`` with the reason."""

    def __init__(self, devices: DeviceRegistry, lateness_s: float) -> None:
        self._devices = devices.by_id  # a dict lookup, not a call into the registry
        self._lateness_ms = int(lateness_s * 1000)
        self._last: dict[str, tuple[int, float | None]] = {}

    def restore(self, latest: dict[str, tuple[int, float | None]]) -> None:
        self._last = dict(latest)

    def normalise(self, topic: Topic, sample: Sample) -> Reading:
        if sample.device_id != topic.device_id:
            raise Rejected(
                "device_mismatch",
                f"topic names {topic.device_id!r} but the payload names {sample.device_id!r}",
            )
        device = self._devices.get(sample.device_id)
        if device is None:
            raise Rejected("unknown_device", f"{sample.device_id!r} is not in the device registry")
        # The registry's entries are pydantic models: each field is read once (an attribute
        # read on one costs several dict lookups). The id is the registry's own string, not
        # the payload's equal copy: every per-device table keyed on it then shares one string
        # per gauge (about 60 bytes a gauge, bench/ingest_throughput.py --memory).
        device_id, grid_code, kind = device.device_id, device.grid_code, device.kind
        if grid_code != topic.grid_code:
            raise Rejected("grid_mismatch", f"{device_id} is registered in {grid_code}")
        if kind is not topic.kind or sample.kind is not kind:
            raise Rejected(
                "kind_mismatch",
                f"{device_id} is a {kind} device; topic says {topic.kind}, payload carries {sample.kind}",
            )
        ms = epoch_ms(sample.ts)
        last = self._last.get(device_id)
        # Unpacked by type, not by the iterator protocol (a conditional expression over two
        # tuple types is an object to the compiler: about 900 instructions a reading).
        last_ms: int | None = None
        last_counter: float | None = None
        if last is not None:
            last_ms, last_counter = last
        if last_ms is not None and ms < last_ms - self._lateness_ms:
            raise Rejected(
                "late",
                f"{sample.ts.isoformat()} is older than the lateness watermark"
                f" ({self._lateness_ms // 1000} s behind the newest reading)",
            )
        in_order = last_ms is None or ms > last_ms
        counter = None
        if sample.measure == "counter":
            counter = sample.value
            if not in_order or last_counter is None:
                # Out-of-order or first counter: no interval to attribute; the next in-order
                # reading carries the difference, so no rain is lost or counted twice.
                value = 0.0
            elif sample.value >= last_counter:
                value = sample.value - last_counter
            else:  # the counter was reset (power cycle, wrap): count from zero
                value = sample.value
        elif sample.measure == "rate":
            interval = sample.update_interval_s or device.interval_s
            value = sample.value * interval / 3600.0
        else:
            value = sample.value
        if not math.isfinite(value):  # a huge rate times a long interval overflows
            raise Rejected("non_finite", f"{sample.measure} {sample.value} gives {value} mm")
        if in_order:
            self._last[device_id] = (ms, counter if counter is not None else last_counter)
        # Every field was checked above or by the codec (finite, in range, zone-aware ts) and
        # the ids come from the validated registry.
        return Reading(
            device_id,
            kind,
            grid_code,
            sample.ts,
            value,
            _UNIT[kind],
            counter,
            sample.battery,
            sample.update_interval_s,
            ts_ms=ms,
        )
