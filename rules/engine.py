"""RuleEngine: the declarative rule set applied to a stream of readings.

- Each window rule keeps a level per (rule, device) with hysteresis, a duration
  condition and a cooldown.
- Breaches of any rule of one case category in one grid are **one** incident: it opens
  on the first level, is raised when a higher level is reached, and closes once every
  member has stayed clear for ``incident_quiet_s``, with its peak recorded.
- Staleness rules file a fault case for a gauge that has gone silent.
- Escalation files street- and district-level summaries when several grids or streets
  are in an incident of the same category at once.

Time is the readings' own time; ``tick(now)`` advances it when no reading arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple, cast

from gridsense.model.case import Evidence
from gridsense.model.envelopes import Kind
from gridsense.model.incident import Incident, IncidentChange, incident_id, level_rank
from gridsense.model.reading import Reading
from gridsense.model.registry import DeviceRegistry
from rules.escalation import Escalation
from rules.incidents import IncidentBook, is_grid_incident
from rules.series import FINE_S, MAX_TOTALS, NEEDS, DeviceSeries, Op, SumRing, resolution
from rules.spec import RuleFile, StalenessRule, WindowRule

log = logging.getLogger("gridsense.rules")

LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


@dataclass
class Member:
    """The state of one window rule on one device."""

    level: str | None = None
    since: dict[str, float] = field(default_factory=dict)  # level → first time its trigger held
    left_at: dict[str, float] = field(default_factory=dict)  # level → when it was last left


# Final: C statics once compiled. ``Kind.RAIN`` itself is an attribute read through the enum
# class's ``__getattr__`` hook, about 600 instructions, on every reading that compares a kind.
_RAIN: Final = Kind.RAIN
_SNOW: Final = Kind.SNOW
_WATER: Final = Kind.WATER


class _RulePlan(NamedTuple):
    """How ``evaluate`` reads one window rule: its sum ring slot, if any, and its quiet line."""

    rule: WindowRule
    rule_id: str  # rule.id, read once: the rule is a pydantic model
    slot: tuple[int, int] | None  # (index of the ring, index of its running total)
    quiet_below: float


def _member_key(rule_id: str, device_id: str) -> str:
    return f"{rule_id}|{device_id}"


class RuleEngine:
    """Evaluates a ``RuleFile`` against readings; produces incident changes."""

    def __init__(self, spec: RuleFile, book: IncidentBook, devices: DeviceRegistry) -> None:
        self.spec = spec
        self._book = book
        self._devices = devices
        self._window_rules: dict[Kind, list[WindowRule]] = {}
        self._stale_rules: dict[Kind, StalenessRule] = {}
        self._ops: dict[Kind, set[tuple[int, Op]]] = {}
        spans: dict[Kind, dict[int, set[int]]] = {Kind.RAIN: {FINE_S: {5}}}  # 5 min: the spike check
        for rule in spec.rules:
            kind = Kind(rule.kind)
            if isinstance(rule, WindowRule):
                self._window_rules.setdefault(kind, []).append(rule)
                res = resolution(rule.window_s)
                self._ops.setdefault(kind, set()).update((res, op) for op in NEEDS[rule.aggregate])
                spans.setdefault(kind, {}).setdefault(res, set()).add(rule.window_s // res)
            else:
                self._stale_rules[kind] = rule
        self._ops.setdefault(Kind.RAIN, set()).add((FINE_S, "sum"))  # the spike check reads it
        # Shared, sorted tuples: every device of a kind points at the same ones.
        self._ring_ops = {k: tuple(sorted(v)) for k, v in self._ops.items()}
        self._spans = {k: {res: tuple(sorted(ks)) for res, ks in v.items()} for k, v in spans.items()}
        self._plans = {k: [self._plan(k, r) for r in rules] for k, rules in self._window_rules.items()}
        self._series: dict[str, DeviceSeries] = {}
        self._members: dict[tuple[str, str], Member] = {}
        #: How many members each device has: a quiet reading of a device with none skips its
        #: rules without building a (rule, device) key for each (``_set_member``, ``_drop_member``).
        self._member_count: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self._ut: dict[str, float] = {}
        self._escalation = Escalation(spec.escalation, book)
        self.suspect_count = 0
        # The quality lines, read once: the spec is a frozen pydantic model, whose every field
        # read goes through its ``__getattr__`` hook.
        q = spec.quality
        self._rain_max_5min = q.rain_max_mm_per_5min
        self._water_max_rise_min = q.water_max_rise_cm_per_min
        self._snow_max_rise_h = q.snow_max_rise_cm_per_hour

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        self._series.clear()
        self._members.clear()
        self._member_count.clear()
        self._last_seen.clear()
        self._ut.clear()

    def restore_levels(self, baseline: datetime) -> None:
        """After loading the incident book: member levels from open incidents; silence from ``baseline``."""
        for inc in self._book.open_incidents():
            for key, level in inc.device_levels.items():
                rule_id, _, device_id = key.partition("|")
                self._set_member(rule_id, device_id, Member(level=level))
        for dev in self._devices:
            self._last_seen.setdefault(dev.device_id, baseline.timestamp())

    def _plan(self, kind: Kind, rule: WindowRule) -> _RulePlan:
        slot: tuple[int, int] | None = None
        if rule.aggregate == "sum":  # read straight from the ring's running total
            res = resolution(rule.window_s)
            ring = self._ring_ops[kind].index((res, "sum"))
            j = self._spans[kind][res].index(rule.window_s // res)
            # The rule file's windows leave at most four a resolution (tests/rules/test_series.py);
            # were there more, the ring would sum the others when read.
            slot = (ring, j) if j < MAX_TOTALS else None
        # Below this (with a margin for the rounding _apply does) a device with no state on
        # the rule cannot reach its first level: the rule is skipped without a call.
        return _RulePlan(rule, rule.id, slot, rule.levels[0].trigger - 0.001)

    def _series_for(self, reading: Reading) -> DeviceSeries:
        device = reading.device_id
        s = self._series.get(device)
        if s is None:
            kind = reading.kind
            s = self._series[device] = DeviceSeries(self._ring_ops.get(kind, ()), self._spans.get(kind))
        return s

    def warm(self, reading: Reading) -> None:
        """Replay a stored reading into the windows without evaluating levels."""
        if not reading.suspect:
            self._series_for(reading).add(reading.ts_ms / 1000, reading.value)

    def state_bytes(self) -> int:
        return sum(s.nbytes() for s in self._series.values())

    # --- quality ----------------------------------------------------------------------

    def check_quality(self, reading: Reading) -> Reading:
        """Flag a reading the gauge cannot physically produce; it is stored but never triggers."""
        series = self._series.get(reading.device_id)
        suspect = False
        kind, value = reading.kind, reading.value
        if kind is _RAIN:
            recent = series.recent_sum(300) if series is not None else 0.0
            suspect = value + recent > self._rain_max_5min
        elif series is not None and series.prev_ts is not None and series.prev_value is not None:
            dt = reading.ts_ms / 1000 - series.prev_ts
            if dt > 0:
                rise = value - series.prev_value
                if kind is _WATER:
                    line = self._water_max_rise_min
                    suspect = rise / (dt / 60.0) > line and rise > line
                elif kind is _SNOW:
                    suspect = rise / (dt / 3600.0) > self._snow_max_rise_h and rise > 5.0
        if suspect:
            self.suspect_count += 1
            log.warning(
                "suspect reading device=%s ts=%s value=%s", reading.device_id, reading.ts, reading.value
            )
            return reading.as_suspect()
        return reading

    # --- evaluation -------------------------------------------------------------------

    def evaluate(self, reading: Reading, arrived_s: float | None = None) -> list[IncidentChange]:
        """Apply every rule of the reading's kind; ``arrived_s`` (when the message arrived,
        seconds since the epoch; the reading's own time if not given) feeds the staleness rules.

        The windows run on the reading's store key (``ts_ms``), not on ``ts``: a window
        rebuilt from the store after a restart then holds exactly what the live one held, to
        the bucket, and a ``datetime.timestamp()`` call (about 1,000 instructions) is saved
        twice a reading.
        """
        changes: list[IncidentChange] = []
        # Each field is read once into a local, and the rule's id comes from its plan.
        device, kind, ts = reading.device_id, reading.kind, reading.ts
        ts_s = reading.ts_ms / 1000
        self._last_seen[device] = ts_s if arrived_s is None else arrived_s
        ut = reading.update_interval_s
        if ut is not None:
            self._ut[device] = ut
        stale = self._stale_rules.get(kind)
        if stale is not None:
            inc = self._book.open_for(stale.id, device)
            if inc is not None:
                inc.summary_zh = f"设备 {device} 恢复上报"
                inc.summary_en = f"device {device} reports again"
                self._book.close(inc, ts)
                changes.append(IncidentChange("cleared", inc, ts))
        if reading.suspect:
            return changes
        series = self._series_for(reading)
        series.add(ts_s, reading.value)
        now = series.prev_ts if series.prev_ts is not None else ts_s
        rings, members = series.rings, self._members
        watched = device in self._member_count  # a member of some rule: look each one up
        for rule, rule_id, slot, quiet_below in self._plans.get(kind, ()):
            if slot is not None:
                value: float | None = cast(SumRing, rings[slot[0]]).total_at(slot[1])
            else:
                value = series.aggregate(rule.aggregate, rule.window_s)
            if value is None or (value < quiet_below and not (watched and (rule_id, device) in members)):
                continue
            changes.extend(self._apply(rule, reading, round(value, 3), now, series))
        if changes:  # nearly every reading changes nothing, and then there is nothing to escalate
            changes.extend(self._escalation.review(changes))
        return changes

    def _next_level(self, rule: WindowRule, m: Member, value: float, now: float) -> str | None:
        names = [lv.name for lv in rule.levels]
        # Entering: the trigger held for duration_s, and the level is not cooling down.
        up = None
        for lv in rule.levels:
            if value >= lv.trigger:
                since = m.since.setdefault(lv.name, now)
                cooling = now - m.left_at.get(lv.name, -1e18) < rule.cooldown_s
                if now - since >= rule.duration_s and not cooling:
                    up = lv.name
            else:
                m.since.pop(lv.name, None)
        # Leaving: only below the level's own clear line (hysteresis).
        idx = names.index(m.level) if m.level in names else -1
        while idx >= 0 and value < rule.levels[idx].clear:
            m.left_at[names[idx]] = now
            idx -= 1
        down = names[idx] if idx >= 0 else None
        return up if level_rank(up) > level_rank(down) else down

    def _set_member(self, rule_id: str, device_id: str, m: Member) -> None:
        key = (rule_id, device_id)
        if key not in self._members:
            self._member_count[device_id] = self._member_count.get(device_id, 0) + 1
        self._members[key] = m

    def _drop_member(self, rule_id: str, device_id: str) -> None:
        del self._members[(rule_id, device_id)]
        left = self._member_count[device_id] - 1
        if left:
            self._member_count[device_id] = left
        else:
            del self._member_count[device_id]

    def _apply(
        self, rule: WindowRule, reading: Reading, value: float, now: float, series: DeviceSeries
    ) -> list[IncidentChange]:
        m = self._members.get((rule.id, reading.device_id))
        if m is None:
            if value < rule.levels[0].trigger:
                return []  # the common case: quiet, and no state to keep
            m = Member()
            self._set_member(rule.id, reading.device_id, m)
        key = _member_key(rule.id, reading.device_id)
        new = self._next_level(rule, m, value, now)
        group = self._book.open_for(rule.category, reading.grid_code)
        if (
            group is not None
            and level_rank(new) >= 0
            and value > group.peak_value
            and group.unit == rule.unit
        ):
            group.peak_value = value
            self._book.touch(group)
        if new == m.level:
            if new is None and not m.since and not m.left_at:
                self._drop_member(rule.id, reading.device_id)  # back to quiet: drop the state
            return []
        m.level = new
        at = reading.ts
        if group is None:
            if new is None:
                return []
            group = Incident(
                incident_id=incident_id(rule.category, reading.grid_code, at),
                rule_id=rule.category,
                category_ref=rule.category,
                grid_code=reading.grid_code,
                opened_at=at,
                updated_at=at,
                level=new,
                peak_value=value,
                unit=rule.unit,
                window_s=rule.window_s,
                subject=reading.grid_code,
                device_levels={key: new},
                peak_device=reading.device_id,
            )
            _describe(group, rule, reading.device_id, value, new)
            self._book.add(group)
            return [IncidentChange("opened", group, at, (_series_evidence(rule, reading, series),))]
        if new is None:
            group.device_levels.pop(key, None)
        else:
            group.device_levels[key] = new
            group.quiet_since = None
        group.updated_at = max(group.updated_at, at)
        self._book.touch(group)
        if not group.device_levels and group.quiet_since is None:
            group.quiet_since = at.isoformat()
        if new is not None and level_rank(new) > level_rank(group.level):
            group.level = new
            group.peak_value, group.unit, group.peak_device = value, rule.unit, reading.device_id
            group.window_s = rule.window_s
            _describe(group, rule, reading.device_id, value, new)
            return [IncidentChange("raised", group, at, (_series_evidence(rule, reading, series),))]
        return self._close_quiet([group], at)

    def _close_quiet(self, incidents: Iterable[Incident], at: datetime) -> list[IncidentChange]:
        out = []
        for inc in incidents:
            if inc.device_levels or inc.quiet_since is None:
                continue
            if at - datetime.fromisoformat(inc.quiet_since) >= timedelta(seconds=self.spec.incident_quiet_s):
                self._book.close(inc, at)
                out.append(IncidentChange("cleared", inc, at))
        return out

    # --- time passing -----------------------------------------------------------------

    def tick(self, now: datetime) -> list[IncidentChange]:
        """Advance time: close quiet incidents, open staleness incidents, review escalations."""
        changes = self._close_quiet([i for i in self._book.open_incidents() if is_grid_incident(i)], now)
        t = now.timestamp()
        for dev in self._devices:
            rule = self._stale_rules.get(dev.kind)
            if rule is None or self._book.open_for(rule.id, dev.device_id) is not None:
                continue
            last = self._last_seen.get(dev.device_id)
            if last is None:
                self._last_seen[dev.device_id] = t  # first sight of the registry: start counting
                continue
            interval = self._ut.get(dev.device_id, dev.interval_s)
            if t - last > rule.factor * interval:
                silent_min = (t - last) / 60.0
                inc = Incident(
                    incident_id=incident_id(rule.id, dev.device_id, datetime.fromtimestamp(last, UTC)),
                    rule_id=rule.id,
                    category_ref=rule.category,
                    grid_code=dev.grid_code,
                    opened_at=now,
                    updated_at=now,
                    level=None,
                    peak_value=round(silent_min, 1),
                    unit="min",
                    window_s=int(rule.factor * interval),
                    subject=dev.device_id,
                    location=(dev.lat, dev.lon),
                    summary_zh=(
                        f"设备 {dev.device_id}（{dev.name or dev.kind}）已 {silent_min:.0f} 分钟未上报，"
                        f"超过约定间隔 {interval:.0f} 秒的 {rule.factor:g} 倍"
                    ),
                    summary_en=(
                        f"device {dev.device_id} silent for {silent_min:.0f} min, over {rule.factor:g}"
                        f" × its {interval:.0f} s interval"
                    ),
                )
                self._book.add(inc)
                changes.append(IncidentChange("opened", inc, now))
        changes.extend(self._escalation.review(changes))
        return changes


def _describe(inc: Incident, rule: WindowRule, device_id: str, value: float, level: str) -> None:
    unit = f" {rule.unit}" if rule.unit else ""
    inc.summary_zh = (
        f"{device_id} {rule.label_zh or rule.id} {value:g}{unit}，达到{LEVEL_ZH[level]}等级（{rule.id}）"
    )
    inc.summary_en = f"{device_id} {rule.label_en or rule.id} {value:g}{unit}, {level} level ({rule.id})"


def _series_evidence(rule: WindowRule, reading: Reading, series: DeviceSeries) -> Evidence:
    key = (resolution(rule.window_s), "sum")
    ring = series.ring(key) if key in series.keys else series.rings[0]
    k = rule.window_s // ring.bucket_s
    first = (ring.head - min(k, ring.n) + 1) * ring.bucket_s
    points = [
        [datetime.fromtimestamp(first + i * ring.bucket_s, UTC).isoformat(), round(v, 3)]
        for i, v in enumerate(ring.window(k))
        if v == v and v != 0.0
    ]
    return Evidence.of_data(
        "readings",
        f"{reading.device_id}: {rule.window} {ring.op} per {ring.bucket_s // 60} min bucket ({rule.unit})",
        points,
    )
