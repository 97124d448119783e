"""ChildProcess: a pipeline stage in a process of its own, started, watched and stopped by the pipeline.

Two stages leave the pipeline's interpreter this way: the InfluxDB forwarder
(``ingest.forwarder_process``) and case delivery (``bridge.delivery_process``). On the
pipeline's interpreter each competed with ingest for the GIL; in a process of its own each
runs on another core. A stage and the pipeline share only the state store's file (SQLite
WAL, or the PostgreSQL outbox) and a few integers in shared memory (``counts``: one writer
per slot, so no lock).

The process is spawned, not forked: the pipeline already runs threads (MQTT, the operations
page) by the time it starts. It logs like its parent, and ignores SIGINT: Ctrl-C reaches
the whole process group, and the parent stops it in order (``stop``), after ingest has
stopped. If the parent dies without stopping it (SIGKILL, a crash), the stop signal the
stage sees is set at its next look (``StopOrOrphaned``), so a restarted pipeline never
finds a stray stage working on the same store beside its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger("gridsense.child")


class Stoppable(Protocol):
    """What a stage's loop needs of its stop signal (an ``Event``, threading's or a process's)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def set(self) -> None: ...


class Counts(Protocol):
    """Where a stage counts (a process-shared array of integers)."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, v: int, /) -> None: ...


#: A stage's body: runs in the child until ``stop`` is set; its return value is the exit code.
Stage = Callable[..., int]


class ChildProcess:
    """Starts, watches and stops one stage's process."""

    def __init__(self, name: str, stage: Stage, args: tuple[Any, ...], counts: int | Counts) -> None:
        """``stage(stop, counts, *args)`` runs in the child; it must be a module-level function.

        ``counts``: how many integers to share, or the array of a predecessor, whose counts
        this process then carries on (``Supervised`` restarts a stage this way).
        """
        self._ctx = multiprocessing.get_context("spawn")
        self.name = name
        self._stage = stage
        self._args = args
        self._stop = self._ctx.Event()
        self.counts: Counts = self._ctx.Array("q", counts, lock=False) if isinstance(counts, int) else counts
        self._proc: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def exitcode(self) -> int | None:
        """None while running (or before start); the stage's exit code once it has stopped."""
        return None if self._proc is None else self._proc.exitcode

    def start(self) -> None:
        """Spawn the process; a ``ChildProcess`` starts once."""
        if self._proc is not None:
            raise RuntimeError(f"the {self.name} process was already started")
        root = logging.getLogger()
        fmt = next((h.formatter._fmt for h in root.handlers if h.formatter is not None), None)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(self._stage, self._stop, self.counts, root.level, fmt, self._args),
            name=self.name,
            daemon=True,
        )
        self._proc.start()
        log.info("%s process started pid=%s", self.name, self._proc.pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Let the stage finish what it is doing, then end the process (killed after ``timeout_s``)."""
        self._stop.set()
        if self._proc is None:
            return
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            log.warning("%s did not stop in %.0f s; terminating it", self.name, timeout_s)
            self._proc.terminate()
            self._proc.join(5)


def _child_main(
    stage: Stage, stop: Event, counts: Counts, level: int, fmt: str | None, args: tuple[Any, ...]
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT, stream=sys.stderr)
    code = stage(StopOrOrphaned(stop), counts, *args)
    if code:
        sys.exit(code)


class StopOrOrphaned:
    """``stop``, or set as soon as the parent process is gone (``Stoppable``)."""

    def __init__(self, stop: Event) -> None:
        self._stop = stop
        self._parent = multiprocessing.parent_process()

    def is_set(self) -> bool:
        return self._stop.is_set() or (self._parent is not None and not self._parent.is_alive())

    def set(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for ``stop``, looking in on the parent every second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            self._stop.wait(left)
        return True


P = TypeVar("P", bound=ChildProcess)


class Supervised(Generic[P]):
    """One stage's process, started again when it ends on its own (a crash, the OOM killer).

    ``make(counts)`` builds the process; a successor gets its predecessor's counts, so the
    stage's counters carry on across a restart. An exit code in ``final`` (a stage that
    found its configuration wrong) is left for an operator: a restart would only fail again.
    Restarts wait ``min_s``, doubling up to ``max_s`` while the stage keeps ending within
    ``max_s`` of its start. ``check`` does it; ``gridsense run`` calls it every second.
    """

    def __init__(
        self,
        make: Callable[[Counts | None], P],
        *,
        final: frozenset[int] = frozenset(),
        min_s: float = 1.0,
        max_s: float = 60.0,
    ) -> None:
        self._make = make
        self.process: P = make(None)
        self._final = final
        self._min_s, self._max_s = min_s, max_s
        self._delay = min_s
        self._started_at = 0.0
        self._ended_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process.start()
        self._started_at = time.monotonic()

    def check(self, now: float | None = None) -> bool:
        """Restart the process if it ended on its own and its wait is over; True if it did."""
        code = self.process.exitcode
        if code is None or code in self._final:
            return False
        now = time.monotonic() if now is None else now
        if self._ended_at is None:
            self._ended_at = now
            if now - self._started_at >= self._max_s:
                self._delay = self._min_s  # it had run a good while: not a crash loop
            log.error(
                "%s process ended on its own (exit code %s); restarting it in %.0f s",
                self.process.name,
                code,
                self._delay,
            )
        if now - self._ended_at < self._delay:
            return False
        self.process = self._make(self.process.counts)
        self.start()
        self.restarts += 1
        self._ended_at = None
        self._delay = min(self._delay * 2, self._max_s)
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        self.process.stop(timeout_s)
