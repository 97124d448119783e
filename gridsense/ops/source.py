"""What the operations page reads: registries, a read-only store and the live counters.

``OpsSource`` is the contract; ``AppSource`` reads a running ``App`` (its store through
read-only connections of its own, its counters by copying them), ``StoreSource`` reads a
store on disk with no pipeline attached (``gridsense ops serve``). Neither ever writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from gridsense.model.registry import DeviceRegistry, GridRegistry
from gridsense.ops.config import OpsConfig

if TYPE_CHECKING:
    from gridsense.app import App
    from gridsense.config import GridsenseConfig


#: A stage process's readiness while it is spawned but not yet in its loop (about a second).
STARTING = "starting: spawned, not yet in its loop"


@dataclass(frozen=True)
class LiveCounters:
    """A copy of the running pipeline's counters, taken at one moment."""

    connected: bool
    backlog: int
    gateway: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    delivery: dict[str, int] = field(default_factory=dict)
    breaker_open: bool = False
    restarts: dict[str, int] = field(default_factory=dict)  # stage processes restarted, by stage
    fatal: str | None = None
    spool_bytes: int = 0


@dataclass(frozen=True)
class Check:
    """One readiness condition."""

    name: str
    ok: bool
    detail: str


class OpsSource(Protocol):
    """Everything the page, the feed and /metrics read. Implementations never write."""

    grids: GridRegistry
    devices: DeviceRegistry
    store_path: Path
    evidence_dir: Path | None
    evidence_url_base: str | None
    assets_enabled: bool  # False: the asset stage is not configured (its panel says so)

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read-only connection to the state store, closed on exit."""
        ...

    def live(self) -> LiveCounters | None:
        """The pipeline's counters now; None when no pipeline is attached."""
        ...

    def readiness(self) -> list[Check]:
        """What /readyz reports; ready when every check is ok."""
        ...


def ro_connect(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): a bug in the page can never change the store."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    conn = ro_connect(path)
    try:
        yield conn
    finally:
        conn.close()


def outbox_writable(path: Path, timeout_s: float = 2.0) -> Check:
    """Take the write lock on a connection of our own and give it straight back.

    ``BEGIN IMMEDIATE`` waits for (at most ``timeout_s``) and takes the store's write lock,
    which is what the pipeline needs to commit a batch and its outbox rows; ``ROLLBACK``
    writes nothing.
    """
    try:
        conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        return Check("outbox_writable", False, f"cannot open {path}: {exc}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return Check("outbox_writable", True, "write lock taken and released")
    except sqlite3.Error as exc:
        return Check("outbox_writable", False, f"{path}: {exc}")
    finally:
        conn.close()


def store_readable(path: Path) -> Check:
    try:
        with _reading(path) as conn:
            conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchall()
        return Check("store_readable", True, str(path))
    except sqlite3.Error as exc:
        return Check("store_readable", False, f"{path}: {exc}")


class AppSource:
    """Reads a running ``App``: its store read-only, its counters copied at call time."""

    def __init__(
        self,
        app: App,
        cfg: OpsConfig | None = None,
        spool_bytes: Callable[[], int] | None = None,
    ) -> None:
        """``spool_bytes``: the hook for the size of a local spool once there is one (else 0)."""
        cfg = cfg or OpsConfig()
        self._app = app
        self.grids = app.registries.grids
        self.devices = app.registries.devices
        self.store_path = Path(app.cfg.store.path)
        self.evidence_dir = cfg.evidence_dir
        self.evidence_url_base = cfg.evidence_url_base
        self.assets_enabled = getattr(app.registries, "assets", None) is not None
        self._spool_bytes = spool_bytes

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        return _reading(self.store_path)

    def live(self) -> LiveCounters:
        gw, dl = self._app.gateway, self._app.delivery
        stats = vars(dl.stats)
        fatal = gw.fatal
        return LiveCounters(
            connected=gw.connected,
            backlog=gw.backlog,
            # dict(Counter) is one C-level copy: no torn read while the worker counts.
            gateway=dict(gw.counters),
            dead_letter_reasons=dict(gw.dead_letter_reasons),
            delivery={k: v for k, v in stats.items() if isinstance(v, int)},
            breaker_open=dl.breaker_open,
            restarts={name: stage.restarts for name, stage in self._app.stages.items()},
            fatal=repr(fatal) if fatal is not None else None,
            spool_bytes=self._spool_bytes() if self._spool_bytes is not None else 0,
        )

    def readiness(self) -> list[Check]:
        gw = self._app.gateway
        broker = Check(
            "broker_connected",
            gw.connected and gw.fatal is None,
            "connected" if gw.connected else "not connected to the MQTT broker",
        )
        if gw.fatal is not None:
            broker = Check("broker_connected", False, f"ingest stopped: {gw.fatal!r}")
        checks = [broker, outbox_writable(self.store_path)]
        delivery = self._app.delivery
        if delivery.exitcode is not None:
            checks.append(
                Check(
                    "case_delivery",
                    False,
                    f"stopped (exit code {delivery.exitcode}): cases wait in the outbox; see the log",
                )
            )
        elif not delivery.ready:
            checks.append(Check("case_delivery", False, STARTING))
        else:
            checks.append(Check("case_delivery", True, f"{delivery.stats.delivered} messages delivered"))
        forwarder = self._app.forwarder
        if forwarder is not None and forwarder.exitcode is not None:
            checks.append(
                Check(
                    "influx_forwarder",
                    False,
                    f"stopped (exit code {forwarder.exitcode}): readings stay in the spool; see the log",
                )
            )
        elif forwarder is not None and not forwarder.ready:
            checks.append(Check("influx_forwarder", False, STARTING))
        elif forwarder is not None:
            checks.append(Check("influx_forwarder", True, f"{forwarder.forwarded} readings forwarded"))
        return checks


class StoreSource:
    """A store on disk with no pipeline attached: what ``gridsense ops serve`` shows."""

    def __init__(
        self,
        grids: GridRegistry,
        devices: DeviceRegistry,
        store_path: Path,
        cfg: OpsConfig | None = None,
        assets_enabled: bool = True,
    ) -> None:
        cfg = cfg or OpsConfig()
        self.grids = grids
        self.devices = devices
        self.assets_enabled = assets_enabled
        self.store_path = Path(store_path)
        self.evidence_dir = cfg.evidence_dir
        self.evidence_url_base = cfg.evidence_url_base

    @classmethod
    def from_config(cls, cfg: GridsenseConfig, ops: OpsConfig | None = None) -> StoreSource:
        from gridsense.app import load_registries

        reg = load_registries(cfg)
        return cls(reg.grids, reg.devices, cfg.store.path, ops, getattr(reg, "assets", None) is not None)

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        return _reading(self.store_path)

    def live(self) -> None:
        return None

    def readiness(self) -> list[Check]:
        return [store_readable(self.store_path)]
