"""InfluxSink against a real VictoriaMetrics speaking the InfluxDB v2 write API."""

from __future__ import annotations

import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gridsense.errors import Fatal, Retryable
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.timekeys import epoch_ms
from ingest.influx_sink import InfluxSink, InfluxSinkConfig, to_point
from ingest.line_protocol import to_line
from tests.fixtures.victoria import VictoriaMetrics, free_port

BEIJING = timezone(timedelta(hours=8))
#: 2024-07-30 14:00:00 Beijing time = 06:00:00 UTC.
T0 = datetime(2024, 7, 30, 14, 0, 0, tzinfo=BEIJING)
T0_MS = 1_722_319_200_000


@pytest.fixture
def measurement(request: pytest.FixtureRequest) -> str:
    """A measurement of this test's own, so tests sharing one server cannot collide."""
    name = re.sub(r"\W", "_", request.node.name)[:40]
    return f"t_{name}_{uuid.uuid4().hex[:8]}"


def config(url: str, **overrides: object) -> InfluxSinkConfig:
    fields: dict[str, object] = {
        "url": url,
        "org": "gridsense",
        "bucket": "readings",
        "token": "test-token",
    }
    fields.update(overrides)
    return InfluxSinkConfig.model_validate(fields)


def reading(
    device_id: str, kind: Kind, grid_code: str, ts: datetime, value: float, **extra: object
) -> Reading:
    unit = "mm" if kind is Kind.RAIN else "cm"
    return Reading(device_id, kind, grid_code, ts, value, unit, **extra)  # type: ignore[arg-type]


def rain_series(n: int, device_id: str = "rg-0001") -> list[Reading]:
    """Readings about a second apart, at ``T0_MS + series_ms(i)``, with value ``i / 10``."""
    return [
        reading(
            device_id,
            Kind.RAIN,
            "110105001001001",
            T0 + timedelta(milliseconds=series_ms(i)),
            i / 10,
        )
        for i in range(n)
    ]


def series_ms(i: int) -> int:
    # Varied milliseconds: a float-based datetime -> ms conversion gets ~1 in 8 wrong.
    return 1007 * i + 1


@pytest.mark.integration
def test_batch_round_trips_with_exact_values_tags_and_timestamps(
    victoria_metrics: VictoriaMetrics, measurement: str
) -> None:
    batch = [
        reading(
            "rg-0001",
            Kind.RAIN,
            "110105001001001",
            T0 + timedelta(milliseconds=123),
            12.5,
            counter=345.5,
            battery=87.0,
        ),
        reading(
            "rg-0001",
            Kind.RAIN,
            "110105001001001",
            T0 + timedelta(minutes=5, milliseconds=7),
            0.7,
            counter=346.2,
            battery=86.5,
        ),
        reading(
            "rg-0002",
            Kind.RAIN,
            "110108002003004",
            T0 + timedelta(milliseconds=999),
            0.0,
            suspect=True,
        ),
        reading(
            "wl-0001",
            Kind.WATER,
            "110102003004005",
            T0 + timedelta(milliseconds=1),
            23.4,
            battery=55.5,
        ),
        # A UTC timestamp and sub-millisecond digits: stored rounded to the nearest ms.
        reading(
            "sn-0001",
            Kind.SNOW,
            "110116004005006",
            datetime(2024, 7, 30, 6, 0, 0, 250_600, tzinfo=UTC),
            3.25,
        ),
    ]

    with InfluxSink(config(victoria_metrics.url, measurement=measurement)) as sink:
        sink.write(batch)

    m = measurement
    rg1 = {
        "device_id": "rg-0001",
        "kind": "rain",
        "grid_code": "110105001001001",
        "district": "110105",
    }
    rg2 = {
        "device_id": "rg-0002",
        "kind": "rain",
        "grid_code": "110108002003004",
        "district": "110108",
    }
    wl1 = {
        "device_id": "wl-0001",
        "kind": "water",
        "grid_code": "110102003004005",
        "district": "110102",
    }
    sn1 = {
        "device_id": "sn-0001",
        "kind": "snow",
        "grid_code": "110116004005006",
        "district": "110116",
    }
    t_a, t_b = T0_MS + 123, T0_MS + 300_007
    expected = {
        (f"{m}_value", frozenset(rg1.items())): [(t_a, 12.5), (t_b, 0.7)],
        (f"{m}_counter", frozenset(rg1.items())): [(t_a, 345.5), (t_b, 346.2)],
        (f"{m}_battery", frozenset(rg1.items())): [(t_a, 87.0), (t_b, 86.5)],
        (f"{m}_suspect", frozenset(rg1.items())): [(t_a, 0.0), (t_b, 0.0)],
        (f"{m}_value", frozenset(rg2.items())): [(T0_MS + 999, 0.0)],
        (f"{m}_suspect", frozenset(rg2.items())): [(T0_MS + 999, 1.0)],
        (f"{m}_value", frozenset(wl1.items())): [(T0_MS + 1, 23.4)],
        (f"{m}_battery", frozenset(wl1.items())): [(T0_MS + 1, 55.5)],
        (f"{m}_suspect", frozenset(wl1.items())): [(T0_MS + 1, 0.0)],
        (f"{m}_value", frozenset(sn1.items())): [(T0_MS + 251, 3.25)],
        (f"{m}_suspect", frozenset(sn1.items())): [(T0_MS + 251, 0.0)],
    }
    series = victoria_metrics.wait_for_samples(f'{{__name__=~"{m}_.*"}}', count=15)

    # org and bucket leave no trace: VictoriaMetrics ignores them on /api/v2/write.
    assert {(s.name, frozenset(s.labels.items())): s.samples for s in series} == expected


@pytest.mark.integration
def test_batch_larger_than_batch_size_is_split_and_all_points_arrive(
    victoria_metrics: VictoriaMetrics, measurement: str
) -> None:
    writes = 'vm_http_requests_total{path="/influx/write", protocol="influx"}'
    batch = rain_series(50)
    before = victoria_metrics.settled_metric(writes)

    with InfluxSink(config(victoria_metrics.url, measurement=measurement, batch_size=7)) as sink:
        sink.write(batch)

    assert victoria_metrics.settled_metric(writes) - before == 8  # ceil(50 / 7) HTTP writes
    [values] = victoria_metrics.wait_for_samples(f"{measurement}_value", count=50)
    assert values.samples == [(T0_MS + series_ms(i), i / 10) for i in range(50)]


@pytest.mark.integration
def test_writing_the_same_readings_again_stores_each_point_once(
    victoria_metrics: VictoriaMetrics, measurement: str
) -> None:
    batch = rain_series(10)
    newcomer = rain_series(11)[-1]

    with InfluxSink(config(victoria_metrics.url, measurement=measurement)) as sink:
        sink.write(batch)
        victoria_metrics.wait_for_samples(f"{measurement}_value", count=10)
        # The newcomer proves the second write is visible before we count.
        sink.write([*batch, newcomer])
        [values] = victoria_metrics.wait_for_samples(f"{measurement}_value", count=11)

    assert values.samples == [(T0_MS + series_ms(i), i / 10) for i in range(11)]


def test_empty_batch_sends_nothing() -> None:
    with InfluxSink(config(f"http://127.0.0.1:{free_port()}")) as sink:
        sink.write([])  # nothing listens there: any request would raise Retryable


def test_server_not_listening_is_retryable() -> None:
    with (
        InfluxSink(config(f"http://127.0.0.1:{free_port()}")) as sink,
        pytest.raises(Retryable, match="cannot connect") as err,
    ):
        sink.write(rain_series(1))
    assert err.value.retry_after_s is None


def test_server_that_never_answers_times_out_as_retryable() -> None:
    """A real listening socket that never accepts: the kernel completes the handshake and
    buffers the request, so only the read timeout can end the write."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            InfluxSink(config(url, timeout_s=0.3)) as sink,
            pytest.raises(Retryable, match="did not answer in time"),
        ):
            sink.write(rain_series(1))


@pytest.mark.integration
def test_server_rejecting_the_token_is_fatal(
    victoria_metrics_factory: Callable[..., VictoriaMetrics],
) -> None:
    """A real 401: VictoriaMetrics with basic auth refuses the client's ``Token`` header."""
    vm = victoria_metrics_factory("-httpAuth.username=writer", "-httpAuth.password=s3cret")
    with (
        InfluxSink(config(vm.url, token="not-a-valid-secret")) as sink,
        pytest.raises(Fatal, match=r"401 Unauthorized.*check the token") as err,
    ):
        sink.write(rain_series(1))
    assert "not-a-valid-secret" not in str(err.value)


@pytest.mark.integration
def test_server_overloaded_is_retryable(
    victoria_metrics_factory: Callable[..., VictoriaMetrics],
) -> None:
    """A real 503: one insert slot, held by a request whose body never finishes."""
    vm = victoria_metrics_factory("-maxConcurrentInserts=1", "-insert.maxQueueDuration=50ms")
    host, port = vm.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as hog:
        hog.sendall(
            b"POST /api/v2/write?org=o&bucket=b HTTP/1.1\r\nHost: vm\r\n"
            b"Content-Length: 100000\r\n\r\nhog v=1 "
        )
        with (
            InfluxSink(config(vm.url)) as sink,
            pytest.raises(Retryable, match="503 Service Unavailable") as err,
        ):
            for _ in range(50):  # until VictoriaMetrics has read the hog's headers
                sink.write(rain_series(1))
    assert err.value.retry_after_s is None


class _InfluxErrorServer(BaseHTTPRequestHandler):
    status = 500
    headers_out: dict[str, str] = {}  # noqa: RUF012 (set per test before any request)
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(self.status)
        for name, value in {**self.headers_out, "Content-Length": str(len(self.body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; the assertions say what was answered


@pytest.fixture
def influx_error_server() -> Iterator[Callable[[int, dict[str, str], bytes], str]]:
    """A stub HTTP server answering every write with one fixed error.

    Justified stand-in: VictoriaMetrics never answers 400, 404, 413 or 429, nor sends
    Retry-After, but InfluxDB does. The stub runs over a real socket, so the answers go
    through influxdb-client's own HTTP stack and exception types, unmocked.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _InfluxErrorServer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def answer(status: int, headers: dict[str, str], body: bytes) -> str:
        _InfluxErrorServer.status = status
        _InfluxErrorServer.headers_out = headers
        _InfluxErrorServer.body = body
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield answer
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _influx_error(code: str, message: str) -> bytes:
    return f'{{"code":"{code}","message":"{message}"}}'.encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, _influx_error("invalid", "field type conflict"), r"400.*field type conflict"),
        (401, _influx_error("unauthorized", "unauthorized access"), r"401.*check the token"),
        (
            404,
            _influx_error("not found", 'bucket \\"readings\\" not found'),
            r"404.*bucket \"readings\" not found.*check the url, org and bucket",
        ),
        (413, _influx_error("too large", "request too large"), r"413.*lower batch_size"),
    ],
    ids=["bad-request", "unauthorized", "bucket-not-found", "too-large"],
)
def test_influxdb_4xx_answers_are_fatal(
    influx_error_server: Callable[[int, dict[str, str], bytes], str],
    status: int,
    body: bytes,
    expected: str,
) -> None:
    url = influx_error_server(status, {"Content-Type": "application/json"}, body)
    with InfluxSink(config(url)) as sink, pytest.raises(Fatal, match=expected):
        sink.write(rain_series(3))


def test_influxdb_429_is_retryable_after_the_delay_it_asks_for(
    influx_error_server: Callable[[int, dict[str, str], bytes], str],
) -> None:
    url = influx_error_server(429, {"Retry-After": "7"}, b"")
    with InfluxSink(config(url)) as sink, pytest.raises(Retryable, match="429") as err:
        sink.write(rain_series(1))
    assert err.value.retry_after_s == 7.0


def test_retry_after_as_an_http_date_is_honoured(
    influx_error_server: Callable[[int, dict[str, str], bytes], str],
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    url = influx_error_server(503, {"Retry-After": later}, b"")
    with InfluxSink(config(url)) as sink, pytest.raises(Retryable, match="503") as err:
        sink.write(rain_series(1))
    assert err.value.retry_after_s is not None
    assert 100 < err.value.retry_after_s <= 120


def test_write_after_close_is_fatal() -> None:
    sink = InfluxSink(config(f"http://127.0.0.1:{free_port()}"))
    with sink:
        pass
    sink.close()  # closing twice is harmless
    with pytest.raises(Fatal, match="after close"):
        sink.write(rain_series(1))


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (T0, T0_MS),
        (T0 + timedelta(microseconds=1_499), T0_MS + 1),
        (T0 + timedelta(microseconds=1_500), T0_MS + 2),
        (datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), -1),
    ],
    ids=["beijing-time", "rounds-down", "rounds-half-up", "before-1970"],
)
def test_epoch_ms_is_exact(ts: datetime, expected_ms: int) -> None:
    assert epoch_ms(ts) == expected_ms


def test_epoch_ms_has_no_float_rounding_error() -> None:
    # influxdb-client's float-based conversion is 1 ms short for ~1 in 8 of these.
    for i in range(2_000):
        assert epoch_ms(T0 + timedelta(milliseconds=7 * i + 1)) == T0_MS + 7 * i + 1


def test_config_is_strict_and_keeps_the_token_secret() -> None:
    cfg = config("http://127.0.0.1:8428/", token="very-secret")
    assert cfg.url == "http://127.0.0.1:8428"
    assert "very-secret" not in repr(cfg) and "very-secret" not in str(cfg.model_dump())
    with pytest.raises(ValidationError, match="extra_forbidden"):
        config("http://127.0.0.1:8428", precision="ns")
    with pytest.raises(ValidationError, match="batch_size"):
        config("http://127.0.0.1:8428", batch_size=0)
    with pytest.raises(ValidationError, match="url"):
        config("127.0.0.1:8428")
    with pytest.raises(ValidationError, match="measurement"):
        config("http://127.0.0.1:8428", measurement="bad name")


_any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300)
@given(
    device_id=st.text(min_size=1, max_size=12),
    kind=st.sampled_from(list(Kind)),
    grid=st.text(min_size=6, max_size=15),
    value=_any_float,
    counter=st.none() | _any_float,
    battery=st.none() | _any_float,
    suspect=st.booleans(),
    ms=st.integers(0, 4_102_444_800_000),
    measurement=st.text(min_size=1, max_size=10).filter(lambda m: not m.startswith("#")),
)
# A tag ending in a backslash takes a trailing space; a plain one takes the one-f-string path.
@example("rg-1\\", Kind.RAIN, "110101000000001", 1.0, None, 87.0, False, 0, "reading")
@example("rg-1", Kind.RAIN, "110101000000001\\", 1.0, None, 87.0, False, 0, "reading")
@example("rg-1", Kind.WATER, "110101000000001", -0.0, 2.0, None, True, 1, "reading")
# Whole numbers print from the integer below 1e15, and through float's repr from there on.
@example("rg-1", Kind.RAIN, "110101000000001", 999_999_999_999_999.0, 1e15, -87.0, False, 2, "reading")
@example("rg-1", Kind.RAIN, "110101000000001", 0.0, -1e15, 9_007_199_254_740_993.0, True, 3, "reading")
# A tag that needs escaping for each character line protocol escapes (the check is one per character).
@example("rg,1", Kind.RAIN, "110101 00000001", 1.0, None, 87.0, False, 0, "reading")
@example("rg=1", Kind.RAIN, "110101\t00000001", 1.0, None, 87.0, False, 0, "reading")
@example("rg\n1", Kind.RAIN, "110101\r00000001", 1.0, None, 87.0, False, 0, "reading")
def test_lines_built_from_rows_are_the_lines_influxdb_client_serialises(
    device_id: str,
    kind: Kind,
    grid: str,
    value: float,
    counter: float | None,
    battery: float | None,
    suspect: bool,
    ms: int,
    measurement: str,
) -> None:
    """``to_line`` (what the forwarder sends) is byte-equal to ``to_point`` through influxdb-client,
    escaping and non-finite fields included."""
    r = Reading(
        device_id=device_id,
        kind=kind,
        grid_code=grid,
        ts=datetime.fromtimestamp(ms / 1000, UTC),
        value=value,
        unit="mm",
        counter=counter,
        battery=battery,
        suspect=suspect,
    )
    row = (device_id, ms, kind.value, grid, value, counter, battery, int(suspect))
    assert to_line(row, measurement) == to_point(r, measurement).to_line_protocol()
