"""The few exception types gridsense uses; each tells the caller what to do."""

from __future__ import annotations


class GridsenseError(Exception):
    """Base class for every error gridsense raises on purpose."""


class Rejected(GridsenseError):
    """Input that can never succeed: dead-letter it with ``reason``, never retry."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Retryable(GridsenseError):
    """A transient failure: try again later, no sooner than ``retry_after_s`` if given."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Fatal(GridsenseError):
    """The process cannot go on safely (bad config, broken store): stop and let a supervisor restart."""


class ConfigError(Fatal):
    """A config, registry or data file is invalid; the message names the file and line or row."""
