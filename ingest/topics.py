"""The topic scheme: ``<root>/<district>/<grid-code>/<kind>/<device-id>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind

# [0-9] and \Z: "\d" takes any Unicode digit and "$" lets a trailing newline through
_DISTRICT = re.compile(r"^[0-9]{6}\Z")
_GRID = re.compile(r"^[0-9]{15}\Z")
_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_KINDS = {k.value: k for k in Kind}


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic."""

    district: str
    grid_code: str
    kind: Kind
    device_id: str


#: Parsed topics remembered; a city's fleet fits, a flood of made-up topics cannot grow it.
PARSED_TOPICS_KEPT = 1 << 18


class TopicScheme:
    """Builds and parses device topics under one root (``city`` in production)."""

    def __init__(self, root: str = "city") -> None:
        if not root or root.startswith("/") or root.endswith("/") or any(c in root for c in "+#"):
            raise ValueError(f"invalid topic root {root!r}")
        self.root = root
        self._prefix = root + "/"
        # Topics repeat (one per device): remember the parsed ones, up to a city's fleet. A
        # plain dict, emptied when full, costs less per device than an LRU's links.
        self._parsed: dict[str, Topic] = {}
        self._districts: dict[str, str] = {}

    @property
    def subscription(self) -> str:
        """The filter that matches every device topic and nothing else."""
        return self.root + "/+/+/+/+"

    @property
    def deadletter(self) -> str:
        return self.root + "/deadletter"

    def topic(self, grid_code: str, kind: Kind | str, device_id: str) -> str:
        return f"{self.root}/{grid_code[:6]}/{grid_code}/{Kind(kind).value}/{device_id}"

    def parse(self, topic: str) -> Topic:
        """Parse a device topic; raise ``Rejected('bad_topic')`` if it is not one."""
        parsed = self._parsed.get(topic)
        if parsed is None:
            parsed = self._parse(topic)
            if len(self._parsed) >= PARSED_TOPICS_KEPT:
                self._parsed.clear()
            self._parsed[topic] = parsed
        return parsed

    def _parse(self, topic: str) -> Topic:
        if not topic.startswith(self._prefix):
            raise Rejected("bad_topic", f"{topic!r} is not under {self.root!r}")
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) != 4:
            raise Rejected("bad_topic", f"{topic!r}: expected {self.root}/<district>/<grid>/<kind>/<device>")
        district, grid, kind, device = parts
        if not _DISTRICT.match(district) or not _GRID.match(grid):
            raise Rejected("bad_topic", f"{topic!r}: district must be 6 digits and grid 15 digits")
        if grid[:6] != district:
            raise Rejected("bad_topic", f"{topic!r}: grid {grid} is not in district {district}")
        if kind not in _KINDS:
            raise Rejected("bad_topic", f"{topic!r}: unknown kind {kind!r}")
        if not _DEVICE.match(device):
            raise Rejected("bad_topic", f"{topic!r}: invalid device id")
        district = self._districts.setdefault(district, district)  # a handful, shared by all
        return Topic(district, grid, _KINDS[kind], device)
