"""A tiny progress bar with no dependencies, for commands that replay, load or export a lot.

On a terminal it redraws one line (at most ten times a second); in a pipe or a log it
prints a plain line at every tenth of the way (or every ``log_every_s`` seconds when the
total is unknown), so CI logs stay readable::

    with Progress(total=len(rows), label="replaying") as bar:
        for row in rows:
            ...
            bar.advance()

    for row in track(rows, label="replaying"):
        ...
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Self, TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Counts work done and shows it; ``total=None`` when the amount is not known."""

    def __init__(
        self,
        total: int | None = None,
        label: str = "",
        stream: TextIO | None = None,
        width: int = 30,
        tty: bool | None = None,
        log_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total if total is None or total > 0 else None
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._tty = tty if tty is not None else _isatty(self._stream)
        self._log_every_s = log_every_s
        self._clock = clock
        self._start = self._clock()
        self._last_draw = float("-inf")
        self._last_step = -1
        self._closed = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_draw()

    def _maybe_draw(self, final: bool = False) -> None:
        now = self._clock()
        if self._tty:
            if final or now - self._last_draw >= 0.1:
                self._last_draw = now
                self._stream.write("\r" + self.line(now) + "\x1b[K")
                self._stream.flush()
            return
        if self.total is not None:
            step = min(10, self.done * 10 // self.total)
            if step > self._last_step or final:
                self._last_step = step
                self._stream.write(self.line(now) + "\n")
        elif final or now - self._last_draw >= self._log_every_s:
            self._last_draw = now
            self._stream.write(self.line(now) + "\n")

    def line(self, now: float | None = None) -> str:
        """The text of the bar as it stands (what a test or a log can look at)."""
        elapsed = (now if now is not None else self._clock()) - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        head = f"{self.label} " if self.label else ""
        if self.total is None:
            return f"{head}{self.done} done, {rate:,.0f}/s, {_clock(elapsed)}"
        frac = min(self.done / self.total, 1.0)
        filled = int(frac * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
        return (
            f"{head}[{bar}] {frac * 100:5.1f}% {self.done}/{self.total} "
            f"{rate:,.0f}/s {_clock(elapsed)} eta {_clock(left)}"
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tty:
            self._maybe_draw(final=True)
            self._stream.write("\n")
        elif self.total is None or self._last_step < 10:
            self._maybe_draw(final=True)
        self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def track(
    items: Iterable[T], total: int | None = None, label: str = "", stream: TextIO | None = None
) -> Iterator[T]:
    """Yield ``items``, advancing a bar by one for each."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, label, stream) as bar:
        for item in items:
            yield item
            bar.advance()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"
