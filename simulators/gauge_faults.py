"""Gauge series to the ``Sample`` stream a device would send, with faults injected on purpose.

Every simulator here (design storm, SWMM/CSV replay, snow, underpass) yields a ``GaugeSeries``;
``rain_samples`` and ``level_samples`` turn it into samples in send order and list every
injected fault in data time, so a test has an independent record of what was sent and what
the pipeline should make of it. ``interleave`` merges several devices into one stream for
``simulators.storm.to_messages``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gridsense.model.envelopes import Kind
from ingest.gauge_codec import Sample


@dataclass(frozen=True)
class GaugeSeries:
    """What one gauge measured: ``values[i]`` belongs to the step ending at ``start + (i + 1)·step``.

    Rain: mm fallen in the step. Snow and water: the level in cm at the end of the step.
    """

    device_id: str
    kind: Kind
    start: datetime
    step: timedelta
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError(f"{self.device_id}: start must carry a timezone")
        if self.step <= timedelta(0):
            raise ValueError(f"{self.device_id}: step must be positive")
        for i, v in enumerate(self.values):
            if not math.isfinite(v) or (self.kind is Kind.RAIN and v < 0):
                raise ValueError(f"{self.device_id}: value {i} is {v}")

    def ends(self) -> list[datetime]:
        """The data time of each value (the end of its step)."""
        return [self.start + (i + 1) * self.step for i in range(len(self.values))]


@dataclass(frozen=True)
class Duplicate:
    """The reading of ``step`` is sent twice in a row."""

    step: int


@dataclass(frozen=True)
class OutOfOrder:
    """The reading of ``step`` is held back and sent after the next reading."""

    step: int


@dataclass(frozen=True)
class SilentGap:
    """The gauge sends nothing for ``minutes`` from the reading of ``step`` on."""

    step: int
    minutes: float


@dataclass(frozen=True)
class Spike:
    """The reading of ``step`` is replaced by ``value`` (mm for rain, cm for levels)."""

    step: int
    value: float = 80.0


@dataclass(frozen=True)
class ClockSkew:
    """Every timestamp the device sends runs ``seconds`` ahead of data time."""

    seconds: float


Fault = Duplicate | OutOfOrder | SilentGap | Spike | ClockSkew

FaultKind = Literal["duplicate", "out_of_order", "gap", "spike", "clock_skew", "counter_reset"]


@dataclass(frozen=True)
class InjectedFault:
    """Ground truth for one injected fault; times are true data times, not as sent.

    ``value`` by kind: spike, the value sent in place of the true one; clock_skew, the seconds
    ahead; counter_reset, the counter sent just after the reset; gap on a rain gauge, the mm
    that fell in the gap (lost for an amount gauge, carried by the next reading of a counter
    gauge). ``until`` (gap only) is the end of the silence: the first data time sent again,
    or the gap's nominal end if the series ends first.
    """

    kind: FaultKind
    device_id: str
    at: datetime
    until: datetime | None = None
    value: float | None = None


@dataclass(frozen=True)
class SentStream:
    """Samples in the order the device sends them, when each leaves (data time), and the faults."""

    samples: tuple[Sample, ...]
    send_at: tuple[datetime, ...]
    faults: tuple[InjectedFault, ...]


def rain_samples(
    series: GaugeSeries,
    *,
    measure: Literal["amount", "counter"] = "amount",
    counter_start: float = 100.0,
    counter_reset_at: int | None = None,
    faults: Sequence[Fault] = (),
    battery: float | None = 95.0,
) -> SentStream:
    """A rain gauge's samples: interval amounts (sent as JSON) or a tipping-bucket counter (SenML).

    ``counter_reset_at`` restarts the counter from zero at that step (a power cycle); the
    reading must come out below the previous one, or no receiver could tell it was a reset.
    A spike on a counter gauge adds to the counter for good, as a bucket cannot un-tip.
    """
    if series.kind is not Kind.RAIN:
        raise ValueError(f"{series.device_id} is a {series.kind} series, not rain")
    if counter_reset_at is not None and measure != "counter":
        raise ValueError("counter_reset_at needs measure='counter'")
    ends = series.ends()
    amounts, truth = _apply_spikes(series, faults)
    sent = list(amounts)
    if measure == "counter":
        total = counter_start
        for i, mm in enumerate(amounts):
            if i == counter_reset_at:
                if i == 0 or mm >= sent[i - 1]:
                    raise ValueError(f"a counter reset at step {i} would not be detectable")
                total = 0.0
                truth.append(InjectedFault("counter_reset", series.device_id, ends[i], value=mm))
            total += mm
            sent[i] = total
    return _send(series, measure, sent, amounts, faults, truth, battery)


def level_samples(
    series: GaugeSeries, *, faults: Sequence[Fault] = (), battery: float | None = 95.0
) -> SentStream:
    """A snow or water gauge's samples: the level in cm at each step's end."""
    if series.kind not in (Kind.SNOW, Kind.WATER):
        raise ValueError(f"{series.device_id} is a {series.kind} series, not a level")
    levels, truth = _apply_spikes(series, faults)
    return _send(series, "level", levels, None, faults, truth, battery)


def interleave(streams: Iterable[SentStream]) -> Iterator[Sample]:
    """All devices' samples in one stream, in send order (ties keep the order of ``streams``)."""
    merged = heapq.merge(*(zip(s.send_at, s.samples, strict=True) for s in streams), key=lambda p: p[0])
    return (sample for _, sample in merged)


def _apply_spikes(series: GaugeSeries, faults: Sequence[Fault]) -> tuple[list[float], list[InjectedFault]]:
    values = list(series.values)
    truth: list[InjectedFault] = []
    ends = series.ends()
    for f in faults:
        if isinstance(f, Spike):
            _check_step(series, f.step)
            values[f.step] = f.value
            truth.append(InjectedFault("spike", series.device_id, ends[f.step], value=f.value))
    return values, truth


def _check_step(series: GaugeSeries, step: int) -> None:
    if not 0 <= step < len(series.values):
        raise ValueError(f"{series.device_id}: step {step} is outside 0–{len(series.values) - 1}")


def _send(
    series: GaugeSeries,
    measure: str,
    sent: list[float],
    amounts: list[float] | None,
    faults: Sequence[Fault],
    truth: list[InjectedFault],
    battery: float | None,
) -> SentStream:
    dev, ends = series.device_id, series.ends()
    # A slot is (step index, send time, timestamp as sent); faults rearrange slots.
    slots = [(i, ends[i], ends[i]) for i in range(len(sent))]
    for f in faults:
        if isinstance(f, SilentGap):
            _check_step(series, f.step)
            gap_end = ends[f.step] + timedelta(minutes=f.minutes)
            dropped = [s for s in slots if ends[f.step] <= s[1] < gap_end]
            slots = [s for s in slots if not ends[f.step] <= s[1] < gap_end]
            after = [s[1] for s in slots if s[1] >= gap_end]
            lost = sum(amounts[i] for i, _, _ in dropped) if amounts is not None else None
            truth.append(InjectedFault("gap", dev, ends[f.step], min(after, default=gap_end), lost))
    for f in faults:
        if isinstance(f, ClockSkew):
            shift = timedelta(seconds=f.seconds)
            slots = [(i, at, ts + shift) for i, at, ts in slots]
            truth.append(InjectedFault("clock_skew", dev, ends[0] if ends else series.start, value=f.seconds))
    for f in faults:
        if isinstance(f, OutOfOrder):
            k = _slot_of(series, slots, f.step)
            if k + 1 >= len(slots):
                raise ValueError(f"{dev}: step {f.step} has no later reading to swap with")
            held, nxt = slots[k], slots[k + 1]
            slots[k], slots[k + 1] = nxt, (held[0], nxt[1], held[2])
            truth.append(InjectedFault("out_of_order", dev, ends[f.step]))
    for f in faults:
        if isinstance(f, Duplicate):
            k = _slot_of(series, slots, f.step)
            slots.insert(k + 1, slots[k])
            truth.append(InjectedFault("duplicate", dev, ends[f.step], value=sent[f.step]))
    interval_s = series.step.total_seconds()
    samples = tuple(Sample(dev, series.kind, ts, measure, sent[i], battery, interval_s) for i, _, ts in slots)
    truth.sort(key=lambda t: t.at)
    return SentStream(samples, tuple(at for _, at, _ in slots), tuple(truth))


def _slot_of(series: GaugeSeries, slots: list[tuple[int, datetime, datetime]], step: int) -> int:
    _check_step(series, step)
    for k, (i, _, _) in enumerate(slots):
        if i == step:
            return k
    raise ValueError(f"{series.device_id}: step {step} is not sent (it falls in a silent gap)")
