"""The time-series sink: readings to any server that speaks the InfluxDB v2 write API.

One point per reading, written with millisecond precision::

    <measurement>,device_id=<id>,kind=<kind>,grid_code=<15 digits>,district=<grid_code[:6]>
        value=<float>[,counter=<float>][,battery=<float>],suspect=<bool> <ts in ms>

``measurement`` defaults to ``reading``. The unit is not stored: it is implied by
``kind`` (``gridsense.model.envelopes.CANONICAL_UNIT``). ``counter`` and ``battery`` are
left out when the reading has none. The timestamp is ``Reading.ts`` rounded to the nearest
millisecond, the resolution the embedded reading store keys on and the finest
VictoriaMetrics keeps. A point is identified by measurement, tags and timestamp, so writing
a reading again overwrites it with the same values: a retried batch is harmless.

VictoriaMetrics (tested against 1.79) accepts the same ``/api/v2/write`` call but stores
one series per field, named ``<measurement>_<field>`` (``reading_value``,
``reading_counter``, ``reading_battery``, ``reading_suspect`` as 1/0), with the tags as
labels. It ignores ``org``, ``bucket`` and the token. Unlike InfluxDB it keeps every
duplicate sample unless it runs with ``-dedup.minScrapeInterval=1ms``; it silently drops
unparsable lines and samples outside ``-retentionPeriod`` (default one month) while still
answering 204.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, Self

import urllib3.exceptions
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gridsense.errors import Fatal, GridsenseError, Retryable
from gridsense.model.reading import Reading
from ingest.line_protocol import Row, lines
from ingest.reading_store import reading_row


class InfluxSinkConfig(BaseModel):
    """Where and how readings are written over the InfluxDB v2 write API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["influxdb"] = Field(
        default="influxdb",
        description="Selects this sink (`sink.type`): any server speaking the InfluxDB v2 write API.",
    )
    url: str = Field(
        pattern=r"^https?://\S+$",
        max_length=2048,
        description="Base URL of the server, e.g. http://127.0.0.1:8086 (InfluxDB) or "
        "http://127.0.0.1:8428 (VictoriaMetrics); /api/v2/write is appended.",
    )
    org: str = Field(
        min_length=1,
        max_length=256,
        description="InfluxDB organisation (ignored by VictoriaMetrics).",
    )
    bucket: str = Field(
        min_length=1, max_length=256, description="InfluxDB bucket (ignored by VictoriaMetrics)."
    )
    token: SecretStr = Field(
        min_length=1,
        max_length=4096,
        description="API token with write access to the bucket; VictoriaMetrics ignores it, "
        "so any non-empty value will do there.",
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds to wait for the server to accept one HTTP write (connect and read).",
    )
    batch_size: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Most points sent in one HTTP write; bigger batches are split.",
    )
    spool_max_rows: int = Field(
        default=2_000_000,
        ge=1,
        le=100_000_000,
        description="Readings the local spool holds while the server is away; when full, MQTT acks"
        " are held back (backpressure) until it drains.",
    )
    measurement: str = Field(
        default="reading",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Measurement name; VictoriaMetrics names its series <measurement>_<field>.",
    )

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        # The client appends "/api/v2/write"; a doubled slash is a 404 on some servers.
        return v.rstrip("/")


def to_point(reading: Reading, measurement: str = "reading") -> Point:
    """The point that stores ``reading`` (schema in the module docstring)."""
    point = (
        Point(measurement)
        .tag("device_id", reading.device_id)
        .tag("kind", reading.kind.value)
        .tag("grid_code", reading.grid_code)
        .tag("district", reading.grid_code[:6])
        .field("value", float(reading.value))
    )
    if reading.counter is not None:
        point.field("counter", float(reading.counter))
    if reading.battery is not None:
        point.field("battery", float(reading.battery))
    return point.field("suspect", reading.suspect).time(reading.ts_ms, WritePrecision.MS)


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def classify_write_error(exc: BaseException, url: str) -> GridsenseError | None:
    """What a failed write means for the caller, or None if ``exc`` is not a write failure."""
    if isinstance(exc, ApiException):
        return _classify_http(exc, url)
    if isinstance(exc, urllib3.exceptions.LocationValueError):
        return Fatal(f"InfluxDB url {url!r} is not usable: {exc}")
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2.x, so test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return Retryable(f"cannot connect to InfluxDB at {url}: {exc}")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return Retryable(f"InfluxDB at {url} did not answer in time: {exc}")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return Retryable(f"cannot reach InfluxDB at {url}: {exc}")
    return None


def _classify_http(exc: ApiException, url: str) -> GridsenseError:
    status = exc.status or 0
    detail = _server_message(exc)
    if status == 429 or status >= 500:
        headers: Any = exc.headers or {}
        return Retryable(
            f"InfluxDB at {url} answered {status} {exc.reason}: {detail}",
            retry_after_s=retry_after_s(headers.get("Retry-After")),
        )
    if status in (401, 403):
        hint = "check the token and that it may write to the org and bucket"
    elif status == 404:
        hint = "check the url, org and bucket"
    elif status == 413:
        hint = "lower batch_size"
    elif status == 0:
        # influxdb-client reports TLS failures and unbuildable requests with status 0.
        return Fatal(f"cannot write to InfluxDB at {url}: {exc.reason}")
    else:
        hint = "the server refused the write; check the sink config and the bucket's schema"
    return Fatal(f"InfluxDB at {url} answered {status} {exc.reason}: {detail} ({hint})")


def _server_message(exc: ApiException) -> str:
    message: Any = getattr(exc, "message", None) or exc.body or ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).split())[:500] or "no message"


class InfluxSink:
    """Writes readings synchronously; ``write`` returns only once the server accepted them.

    Not thread-safe: give each writer thread its own sink.
    """

    def __init__(self, config: InfluxSinkConfig) -> None:
        self._config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=config.token.get_secret_value(),
            org=config.org,
            timeout=max(1, round(config.timeout_s * 1000)),
            # No hidden retries: the caller owns retrying, from the decision we raise.
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._closed = False

    @property
    def config(self) -> InfluxSinkConfig:
        return self._config

    def write(self, readings: Sequence[Reading]) -> None:
        """Write ``readings`` in chunks of ``batch_size``; raise ``Retryable`` or ``Fatal``.

        If a later chunk fails the earlier ones stay written; writing the whole batch again
        is harmless because points overwrite by series and timestamp.
        """
        self.write_rows([reading_row(r) for r in readings])

    def write_rows(self, rows: Sequence[Row]) -> None:
        """``write`` for readings as the spool stores them (no envelope built on the way)."""
        if self._closed:
            raise Fatal("InfluxSink.write called after close()")
        size = self._config.batch_size
        measurement = self._config.measurement
        for start in range(0, len(rows), size):
            self._post(lines(rows[start : start + size], measurement))

    def _post(self, lines: str) -> None:
        try:
            self._write_api.write(
                bucket=self._config.bucket,
                org=self._config.org,
                record=lines.encode(),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant, typed as the class
            )
        except Exception as exc:
            decision = classify_write_error(exc, self._config.url)
            if decision is None:
                raise
            raise decision from exc

    def close(self) -> None:
        """Release the HTTP connections; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._write_api.close()
        finally:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
