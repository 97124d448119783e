"""RainAccumulation: a gauge's rolling rain total crossing warning levels, grouped per grid.

Each level has a trigger and a lower clear threshold (hysteresis), so a total hovering
around a line does not flap. One incident per grid collects every gauge in it: a second
gauge breaching, or a level rising, updates the open incident instead of opening another.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gridsense.config import RainAccumulationConfig
from gridsense.model.case import Evidence
from gridsense.model.envelopes import Kind, Reading
from rules.contract import Incident, IncidentChange, incident_id, level_rank
from rules.incidents import IncidentBook
from rules.window import BucketWindow


class RainAccumulation:
    """The rolling-sum rule over rain gauges."""

    def __init__(self, cfg: RainAccumulationConfig, book: IncidentBook) -> None:
        self.rule_id = cfg.id
        self._cfg = cfg
        self._book = book
        self._windows: dict[str, BucketWindow] = {}

    def _window(self, device_id: str) -> BucketWindow:
        w = self._windows.get(device_id)
        if w is None:
            w = self._windows[device_id] = BucketWindow(self._cfg.window_s, self._cfg.bucket_s)
        return w

    def reset(self) -> None:
        self._windows.clear()

    def warm(self, reading: Reading) -> None:
        if reading.kind is Kind.RAIN and not reading.suspect:
            self._window(reading.device_id).add(reading.ts.timestamp(), reading.value)

    def _level_for(self, current: str | None, total: float) -> str | None:
        up = None
        for lv in self._cfg.levels:
            if total >= lv.trigger_mm:
                up = lv.name
        # Falling: leave a level only once the total is below that level's clear line.
        names: list[str] = [lv.name for lv in self._cfg.levels]
        idx = names.index(current) if current in names else -1
        while idx >= 0 and total < self._cfg.levels[idx].clear_mm:
            idx -= 1
        down = names[idx] if idx >= 0 else None
        return up if level_rank(up) > level_rank(down) else down

    def _describe(self, inc: Incident) -> None:
        minutes = self._cfg.window_s // 60
        inc.summary_zh = f"雨量计 {inc.peak_device} 近{minutes}分钟累计降雨 {inc.peak_value:.1f} 毫米"
        inc.summary_en = f"gauge {inc.peak_device} measured {inc.peak_value:.1f} mm in {minutes} min"

    def evaluate(self, reading: Reading) -> list[IncidentChange]:
        if reading.kind is not Kind.RAIN or reading.suspect:
            return []
        w = self._window(reading.device_id)
        if not w.add(reading.ts.timestamp(), reading.value):
            return []
        total = round(w.total, 6)
        inc = self._book.open_for(self.rule_id, reading.grid_code)
        current = inc.device_levels.get(reading.device_id) if inc else None
        new = self._level_for(current, total)
        series = [[datetime.fromtimestamp(t, UTC).isoformat(), round(v, 3)] for t, v in w.series()]
        minutes = self._cfg.window_s // 60
        evidence = (
            Evidence.of_data("readings", f"{reading.device_id}: {minutes} min window, mm per bucket", series),
        )
        if inc is None:
            if new is None:
                return []
            inc = Incident(
                incident_id=incident_id(self.rule_id, reading.grid_code, reading.ts),
                rule_id=self.rule_id,
                category_ref=self._cfg.category,
                grid_code=reading.grid_code,
                opened_at=reading.ts,
                updated_at=reading.ts,
                level=new,
                peak_value=total,
                unit="mm",
                window_s=self._cfg.window_s,
                subject=reading.grid_code,
                device_levels={reading.device_id: new},
                peak_device=reading.device_id,
            )
            self._describe(inc)
            self._book.add(inc)
            return [IncidentChange("opened", inc, reading.ts, evidence)]

        changed = False
        if total > inc.peak_value:
            inc.peak_value, inc.peak_device = total, reading.device_id
            changed = True
        if new != current:
            if new is None:
                inc.device_levels.pop(reading.device_id, None)
            else:
                inc.device_levels[reading.device_id] = new
            changed = True
        if changed:
            inc.updated_at = max(inc.updated_at, reading.ts)
            self._book.touch(inc)
        if not inc.device_levels:
            self._book.close(inc, reading.ts)
            return [IncidentChange("cleared", inc, reading.ts, evidence)]
        grid_level = max(inc.device_levels.values(), key=level_rank)
        if level_rank(grid_level) > level_rank(inc.level):
            inc.level = grid_level
            self._describe(inc)
            return [IncidentChange("raised", inc, reading.ts, evidence)]
        return []
