"""The reference platform's Open311 GeoReport v2 surface, exercised over a real socket with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.platform import PlatformConfig, PlatformServer, WorkflowConfig
from simulators.platform.config import Open311SurfaceConfig
from tests.platform.test_platform import BEIJING, SteppedClock

pytestmark = pytest.mark.integration

KEY = "demo-open311-key"
FAST = WorkflowConfig(step_delay_s=(0.05, 0.1))


def form(**overrides: str) -> dict[str, str]:
    base = {
        "api_key": KEY,
        "service_code": "EV-0111",
        "lat": "39.9402",
        "long": "116.3907",
        "address_string": "西城区 什刹海 测试下凹桥",
        "description": "[gridsense:gs-0001] 下凹桥积水",
        "media_url": "https://evidence.example/f/1.jpg",
        "attribute[grid_code]": "110102012003001",
        "attribute[level]": "紧急",
        "attribute[gridsense_key]": "gs-0001",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v != ""}


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    with PlatformServer(PlatformConfig(workflow=FAST)) as s:
        yield s


@pytest.fixture
def client(server: PlatformServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.open311_url, timeout=5.0) as http:
        yield http


def test_discovery_and_services_describe_the_endpoint(server: PlatformServer, client: httpx.Client) -> None:
    discovery = client.get("/discovery.json").json()
    services = client.get("/services.json").json()
    definition = client.get("/services/EV-0111.json").json()

    assert discovery["endpoints"][0]["url"] == server.open311_url
    assert discovery["endpoints"][0]["formats"] == ["application/json"]
    waterlogging = next(s for s in services if s["service_code"] == "EV-0111")
    assert waterlogging == {
        "service_code": "EV-0111",
        "service_name": "道路积水",
        "description": "road waterlogging",
        "metadata": True,
        "type": "realtime",
        "keywords": "event:0111,road waterlogging",
        "group": "事件",
    }
    assert {s["service_code"] for s in services} >= {"CP-0103", "EV-0102", "EV-0112"}
    assert definition["service_code"] == "EV-0111"
    assert [a["code"] for a in definition["attributes"]] == ["grid_code", "level", "gridsense_key"]


def test_a_request_is_filed_and_read_back(server: PlatformServer, client: httpx.Client) -> None:
    created = client.post("/requests.json", data=form())

    assert created.status_code == 201
    [answer] = created.json()
    request_id = answer["service_request_id"]
    [one] = client.get(f"/requests/{request_id}.json").json()
    assert one["service_code"] == "EV-0111"
    assert one["status"] == "open"
    assert one["status_notes"] == "立案 (3)"
    assert one["description"] == "[gridsense:gs-0001] 下凹桥积水"
    assert one["media_url"] == "https://evidence.example/f/1.jpg"
    assert (one["lat"], one["long"]) == (39.9402, 116.3907)
    assert datetime.fromisoformat(one["expected_datetime"]) - datetime.fromisoformat(
        one["requested_datetime"]
    ) == timedelta(hours=2)
    [stored] = server.requests.requests()
    assert stored.attributes == {"grid_code": "110102012003001", "level": "紧急", "gridsense_key": "gs-0001"}
    assert "api_key" not in stored.fields


@pytest.mark.parametrize(
    ("overrides", "code", "description"),
    [
        ({"api_key": ""}, 403, "api_key was not provided or is invalid"),
        ({"api_key": "guess"}, 403, "api_key was not provided or is invalid"),
        ({"service_code": ""}, 400, "service_code was not provided"),
        ({"service_code": "EV-9999"}, 404, "service_code EV-9999 not found"),
        ({"lat": "", "long": "", "address_string": ""}, 400, "a location is required"),
        ({"lat": "north"}, 400, "lat and long must be numbers"),
        ({"description": "x" * 4001}, 400, "description is longer than 4000 characters"),
        ({"attribute[grid_code]": ""}, 400, "attribute[grid_code] is required"),
        ({"attribute[level]": "urgent"}, 400, "attribute[level] must be one of 一般, 紧急, 特急"),
    ],
)
def test_a_bad_request_gets_an_open311_error_array(
    server: PlatformServer, client: httpx.Client, overrides: dict[str, str], code: int, description: str
) -> None:
    answer = client.post("/requests.json", data=form(**overrides))

    assert answer.status_code == code
    [error] = answer.json()
    assert error["code"] == code
    assert error["description"].startswith(description)
    assert server.requests.requests() == []


def test_a_json_body_is_not_a_form(client: httpx.Client) -> None:
    answer = client.post("/requests.json", json=form())

    assert answer.status_code == 400
    assert answer.json() == [{"code": 400, "description": "POST requests.json must be form-encoded"}]


def test_requests_are_searched_by_id_code_status_and_dates(client: httpx.Client) -> None:
    ids = [client.post("/requests.json", data=form()).json()[0]["service_request_id"] for _ in range(2)]
    other = client.post("/requests.json", data=form(service_code="CP-0103")).json()[0]["service_request_id"]
    now = datetime.now(BEIJING)

    def search(**params: str) -> list[str]:
        found: list[dict[str, Any]] = client.get("/requests.json", params=params).json()
        return [r["service_request_id"] for r in found]

    assert search() == [*ids, other]
    assert search(service_request_id=f"{ids[1]},{other}") == [ids[1], other]
    assert search(service_code="EV-0111") == ids
    assert search(status="closed") == []
    assert search(
        start_date=(now - timedelta(hours=1)).isoformat(), end_date=(now + timedelta(hours=1)).isoformat()
    ) == [
        *ids,
        other,
    ]
    assert search(start_date=(now + timedelta(hours=1)).isoformat()) == []
    too_long = client.get(
        "/requests.json",
        params={"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"},
    )
    assert too_long.status_code == 400
    assert client.get("/requests.json", params={"start_date": "yesterday"}).status_code == 400
    assert client.get("/requests/999.json").json() == [{"code": 404, "description": "999 not found"}]


def test_a_token_resolves_to_its_request_after_the_delay() -> None:
    clock = SteppedClock(datetime(2026, 7, 21, 8, 0, tzinfo=BEIJING))
    config = PlatformConfig(workflow=FAST, open311=Open311SurfaceConfig(token_rate=1.0, token_delay_s=30))
    with PlatformServer(config, clock=clock) as server, httpx.Client(base_url=server.open311_url) as client:
        [answer] = client.post("/requests.json", data=form()).json()
        early = client.get(f"/tokens/{answer['token']}.json").json()
        clock.advance(31)
        late = client.get(f"/tokens/{answer['token']}.json").json()
        unknown = client.get("/tokens/T999999.json")

    [request] = server.requests.requests()
    assert set(answer) == {"token", "service_notice"}
    assert early == [{"token": answer["token"], "service_request_id": None}]
    assert late == [{"token": answer["token"], "service_request_id": request.request_id}]
    assert unknown.status_code == 404


def test_a_jurisdiction_must_be_named_when_configured() -> None:
    config = PlatformConfig(workflow=FAST, open311=Open311SurfaceConfig(jurisdiction_id="beijing.xicheng"))
    with PlatformServer(config) as server, httpx.Client(base_url=server.open311_url) as client:
        missing = client.post("/requests.json", data=form())
        wrong = client.get("/services.json", params={"jurisdiction_id": "shanghai"})
        right = client.post("/requests.json", data=form(jurisdiction_id="beijing.xicheng"))

    assert (missing.status_code, wrong.status_code, right.status_code) == (400, 404, 201)


def test_a_request_closes_through_the_workflow_and_counts_in_the_indicators() -> None:
    clock = SteppedClock(datetime(2026, 7, 21, 8, 0, tzinfo=BEIJING))
    config = PlatformConfig(workflow=WorkflowConfig(step_delay_s=(10.0, 10.0)))
    with PlatformServer(config, clock=clock) as server, httpx.Client(base_url=server.url) as client:
        request_id = client.post("/open311/v2/requests.json", data=form()).json()[0]["service_request_id"]
        clock.advance(60)
        [closed] = client.get(f"/open311/v2/requests/{request_id}.json").json()
        indicators = client.get("/api/v1/indicators").json()

    assert (closed["status"], closed["status_notes"]) == ("closed", "结案 (6)")
    assert (indicators["filed"], indicators["closed"], indicators["closed_on_time"]) == (1, 1, 1)
