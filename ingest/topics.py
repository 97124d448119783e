"""The topic scheme: ``<root>/<district>/<grid-code>/<kind>/<device-id>``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple, cast

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind

# [0-9] and \Z: "\d" takes any Unicode digit and "$" lets a trailing newline through
_DISTRICT = re.compile(r"^[0-9]{6}\Z")
_GRID = re.compile(r"^[0-9]{15}\Z")
_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# Final: a C static once compiled, where another module-level name is a dict lookup per use.
_KINDS: Final = {k.value: k for k in Kind}
#: The whole device part in one match, for a topic the string checks in ``parse`` do not
#: take (an id with ``.`` or ``_``); one that fails it is re-checked piece by piece only to
#: say why.
_DEVICE_TOPIC: Final = re.compile(
    r"([0-9]{6})/(\1[0-9]{9})/(" + "|".join(_KINDS) + r")/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\Z"
)


#: Districts whose name string is shared (Beijing has 16; room for any real city).
DISTRICTS_SHARED = 1024


class Topic(NamedTuple):
    """A parsed device topic."""

    district: str
    grid_code: str
    kind: Kind
    device_id: str


#: ``Topic(...)`` runs the NamedTuple's generated ``__new__``, an interpreted frame; the tuple
#: constructor it ends in, called directly, builds the same object for a fraction of the
#: instructions (see ``ingest.gauge_codec._new_sample``).
_new_topic: Final = cast(Callable[[type[Topic], tuple[str, str, Kind, str]], Topic], tuple.__new__)


class TopicScheme:
    """Builds and parses device topics under one root (``city`` in production)."""

    def __init__(self, root: str = "city") -> None:
        if not root or root.startswith("/") or root.endswith("/") or any(c in root for c in "+#"):
            raise ValueError(f"invalid topic root {root!r}")
        self.root = root
        self._prefix = root + "/"
        self._districts: dict[str, str] = {}  # a handful of strings, shared by every topic

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
        """Parse a device topic; raise ``Rejected('bad_topic')`` if it is not one.

        No cache: one would keep state for every device of the fleet (see the memory
        benchmark). A topic of ASCII codes and an id of letters, digits and dashes, which is
        what a fleet sends, is checked with string methods that compile to C calls (5,300
        instructions a topic under callgrind, where the regular expression took 6,800); any
        other goes to the one match, and one that fails it to the checks that say why.
        """
        if topic.startswith(self._prefix) and topic.isascii():
            levels = topic[len(self._prefix) :].split("/")
            if len(levels) == 4:
                district, grid, kind_name, device = levels
                kind = _KINDS.get(kind_name)
                if (
                    kind is not None
                    and len(grid) == 15
                    and grid.isdigit()  # ASCII, so 0-9 only
                    and grid.startswith(district)
                    and len(district) == 6
                    and 0 < len(device) <= 64
                    and device[0].isalnum()
                    and device.replace("-", "0").isalnum()
                ):
                    return _new_topic(Topic, (self._shared(district), grid, kind, device))
        m = _DEVICE_TOPIC.match(topic, len(self._prefix)) if topic.startswith(self._prefix) else None
        if m is None:
            return self._parse(topic)  # raises with the reason
        district, grid, kind_name, device = m.groups()
        return _new_topic(Topic, (self._shared(district), grid, _KINDS[kind_name], device))

    def _shared(self, district: str) -> str:
        """One string per district for every topic of it; a flood of made-up ones stays small."""
        known = self._districts.get(district)
        if known is not None:
            return known
        if len(self._districts) < DISTRICTS_SHARED:
            self._districts[district] = district
        return district

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
        return Topic(self._shared(district), grid, _KINDS[kind], device)
