"""The reference case platform, exercised over a real socket with httpx."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Literal

import httpx
import pytest

from gridsense.model.case import CaseCategory, CasePlace, CaseUpdate, Evidence, GridCase
from gridsense.model.geo import CRS
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer, WorkflowConfig

pytestmark = pytest.mark.integration

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2024, 7, 21, 8, 0, tzinfo=BEIJING)
LostResponseStyle = Literal["drop", "http_500"]
FAST = WorkflowConfig(step_delay_s=(0.05, 0.1))
TEN_S_STEPS = WorkflowConfig(step_delay_s=(10.0, 10.0))


def grid_case(
    key: str,
    *,
    deadline: datetime | None = None,
    description: str = "下凹桥积水深度 22 cm, 超过黄线",
    evidence_url: str | None = "https://evidence.example/rain/0001.json",
) -> GridCase:
    """A valid road-waterlogging (事件 0111 道路积水) case in a 什刹海 grid."""
    filed_at = datetime.now(BEIJING)
    return GridCase(
        case_key=key,
        incident_id=f"incident-{key}",
        source="sensor",
        source_code=41,
        category=CaseCategory(kind="event", code="0111", name_zh="道路积水", name_en="road waterlogging"),
        place=CasePlace(
            grid_code="110102012003001",
            district_code="110102",
            street_code="110102012",
            street_name="什刹海街道",
            community_code="110102012003",
            community_name="测试社区",
            lat=39.9402,
            lon=116.3907,
            crs=CRS.GCJ02,
            wgs84_lat=39.9389,
            wgs84_lon=116.3845,
            address="西城区 什刹海 测试下凹桥",
        ),
        title_zh="道路积水",
        description_zh=description,
        severity="urgent",
        warning_level="yellow",
        filed_at=filed_at,
        deadline=deadline or filed_at + timedelta(hours=2),
        deadline_basis="2 clock_hours",
        routing_level="street",
        responsible_unit="什刹海街道城管科",
        evidence=[
            Evidence(
                kind="readings",
                description="water level readings",
                sha256=hashlib.sha256(key.encode()).hexdigest(),
                url=evidence_url,
            )
        ],
        subject="level-sensor-0001",
        peak_value=0.22,
        unit="m",
    )


def update_for(case: GridCase, n: int = 1) -> CaseUpdate:
    return CaseUpdate(
        update_key=f"{case.case_key}-update-{n}",
        case_key=case.case_key,
        kind="level_raised",
        at=datetime.now(BEIJING),
        warning_level="orange",
        note_zh="水位继续上涨",
        peak_value=0.31,
    )


def file_case(client: httpx.Client, case: GridCase, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key if key is not None else case.case_key}
    return client.post("/api/v1/cases", json=case.model_dump(mode="json"), headers=headers)


class SteppedClock:
    """A clock the test moves by hand, so deadlines and workflow steps are exact."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer(PlatformConfig(workflow=FAST)) as server:
        yield server


@pytest.fixture
def client(platform: PlatformServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.url, timeout=5.0) as http:
        yield http


def test_filing_twice_with_one_key_gives_one_case(platform: PlatformServer, client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0001")

    first = file_case(client, case)
    again = file_case(client, case)

    assert first.status_code == 201
    assert first.json() == {
        "case_id": "BJ-000001",
        "external_id": case.case_key,
        "status": "立案",
        "created": True,
    }
    assert again.status_code == 200
    assert again.json()["case_id"] == "BJ-000001"
    assert again.json()["created"] is False
    assert [c.case_id for c in platform.store.cases()] == ["BJ-000001"]


def test_filing_needs_an_idempotency_key_equal_to_the_case_key(
    platform: PlatformServer, client: httpx.Client
) -> None:
    case = grid_case("waterlog-110102012003001-0002")

    missing = client.post("/api/v1/cases", json=case.model_dump(mode="json"))
    mismatch = file_case(client, case, key="waterlog-110102012003001-9999")
    invalid = client.post(
        "/api/v1/cases",
        json={"case_key": case.case_key},
        headers={"Idempotency-Key": case.case_key},
    )

    assert missing.status_code == 400
    assert mismatch.status_code == 400
    assert invalid.status_code == 422
    assert platform.store.cases() == []


def test_an_update_is_stored_once_however_often_it_is_posted(client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0003")
    case_id = file_case(client, case).json()["case_id"]
    update = update_for(case)
    path = f"/api/v1/cases/{case_id}/updates"

    first = client.post(path, json=update.model_dump(mode="json"))
    again = client.post(path, json=update.model_dump(mode="json"))
    stored = client.get(f"/api/v1/cases/{case_id}").json()

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert [u["update_key"] for u in stored["updates"]] == [update.update_key]
    assert stored["updates"][0]["warning_level"] == "orange"


def test_an_update_for_another_case_key_is_a_conflict(client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0004")
    other = grid_case("waterlog-110102012003001-0005")
    case_id = file_case(client, case).json()["case_id"]

    response = client.post(f"/api/v1/cases/{case_id}/updates", json=update_for(other).model_dump(mode="json"))

    assert response.status_code == 409
    assert client.get(f"/api/v1/cases/{case_id}").json()["updates"] == []


def test_unknown_cases_are_404(client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0006")

    assert client.get("/api/v1/cases/BJ-999999").status_code == 404
    assert client.get(f"/api/v1/cases/by-key/{case.case_key}").status_code == 404
    posted = client.post("/api/v1/cases/BJ-999999/updates", json=update_for(case).model_dump(mode="json"))
    assert posted.status_code == 404


def test_a_bridge_finds_its_case_by_its_own_key(client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0007")
    case_id = file_case(client, case).json()["case_id"]

    found = client.get(f"/api/v1/cases/by-key/{case.case_key}").json()

    assert found["case_id"] == case_id
    assert found["case"]["category"]["code"] == "0111"
    assert found["case"]["place"]["grid_code"] == "110102012003001"


def test_a_case_walks_the_workflow_to_closed(client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0008")
    case_id = file_case(client, case).json()["case_id"]

    seen = client.get(f"/api/v1/cases/{case_id}").json()
    for _ in range(200):
        if seen["status"] == "结案":
            break
        time.sleep(0.05)
        seen = client.get(f"/api/v1/cases/{case_id}").json()

    assert seen["status"] == "结案"
    assert seen["status_code"] == 6
    assert [(h["status"], h["status_code"]) for h in seen["history"]] == [
        ("立案", 3),
        ("派遣", 3),
        ("处置", 4),
        ("核查", 5),
        ("结案", 6),
    ]
    assert seen["closed_on_time"] is True
    closed = client.get("/api/v1/cases", params={"status": "结案"}).json()["cases"]
    assert [c["case_id"] for c in closed] == [case_id]


def test_a_rejected_verification_sends_the_case_back_once() -> None:
    clock = SteppedClock(T0)
    config = PlatformConfig(workflow=TEN_S_STEPS.model_copy(update={"reject_rate": 1.0}))
    with PlatformServer(config, clock=clock) as server, httpx.Client(base_url=server.url) as client:
        case_id = file_case(client, grid_case("waterlog-110102012003001-0009")).json()["case_id"]
        clock.advance(60)
        seen = client.get(f"/api/v1/cases/{case_id}").json()

    assert [h["status"] for h in seen["history"]] == [
        "立案",
        "派遣",
        "处置",
        "核查",
        "处置",
        "核查",
        "结案",
    ]


def test_indicators_count_closed_and_overdue_cases_as_due() -> None:
    # Every step takes exactly 10 s, so a case filed at t closes at t + 40 s.
    clock = SteppedClock(T0)
    with (
        PlatformServer(PlatformConfig(workflow=TEN_S_STEPS), clock=clock) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        # A closes at +40 s, deadline +60 s: on time.  B closes at +40 s, deadline +20 s: late.
        file_case(client, grid_case("indicators-case-a-0001", deadline=T0 + timedelta(seconds=60)))
        file_case(client, grid_case("indicators-case-b-0001", deadline=T0 + timedelta(seconds=20)))
        clock.advance(100)
        # C is filed at +100 s with deadline +105 s (it will close late at +140 s).
        file_case(client, grid_case("indicators-case-c-0001", deadline=T0 + timedelta(seconds=105)))
        clock.advance(10)
        # D is filed at +110 s with a deadline an hour away (it will close on time at +150 s).
        file_case(client, grid_case("indicators-case-d-0001", deadline=T0 + timedelta(hours=1)))
        clock.advance(10)
        at_120 = client.get("/api/v1/indicators").json()
        clock.advance(80)
        at_200 = client.get("/api/v1/indicators").json()

    # At +120 s: A and B are closed, C is overdue and open, D is open and not yet due.
    assert at_120["filed"] == 4
    assert (at_120["closed"], at_120["closed_on_time"], at_120["due"]) == (2, 1, 3)
    assert at_120["closure_rate"] == pytest.approx(2 / 3)
    assert at_120["on_time_closure_rate"] == pytest.approx(1 / 3)
    # At +200 s all four are closed; D counts as due because it is closed, before its deadline.
    assert (at_200["closed"], at_200["closed_on_time"], at_200["due"]) == (4, 2, 4)
    assert at_200["closure_rate"] == 1.0
    assert at_200["on_time_closure_rate"] == 0.5


def test_indicators_leave_out_voided_and_deferred_cases() -> None:
    # Seed 5 with these rates gives, in filing order: closed, deferred, closed, voided.
    workflow = TEN_S_STEPS.model_copy(update={"void_rate": 0.25, "defer_rate": 0.25, "seed": 5})
    clock = SteppedClock(T0)
    deadlines = [30, 30, 60, 30]  # seconds after T0; cases close at +40 s
    with (
        PlatformServer(PlatformConfig(workflow=workflow), clock=clock) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for n, seconds in enumerate(deadlines):
            deadline = T0 + timedelta(seconds=seconds)
            file_case(client, grid_case(f"indicators-mixed-{n:04d}", deadline=deadline))
        clock.advance(100)
        statuses = [c["status"] for c in client.get("/api/v1/cases").json()["cases"]]
        deferred = client.get("/api/v1/cases", params={"status": "缓办"}).json()["cases"]
        result = client.get("/api/v1/indicators").json()

    assert statuses == ["结案", "缓办", "结案", "作废"]
    assert [c["status_code"] for c in deferred] == [8]
    # due = 2 closed + 1 overdue deferred; the voided case is never due.
    assert (result["filed"], result["voided"], result["due"], result["deferred"]) == (4, 1, 3, 1)
    # 结案率 = 2 / (3 - 1); 按期结案率 = 1 / (3 - 1): only the case with the +60 s deadline.
    assert result["closure_rate"] == 1.0
    assert result["on_time_closure_rate"] == 0.5


def test_the_case_page_escapes_what_a_case_says(client: httpx.Client) -> None:
    case = grid_case(
        "waterlog-110102012003001-0010",
        description="<script>alert('x')</script>",
        evidence_url="javascript:alert(1)",
    )
    file_case(client, case)

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "BJ-000001" in page.text
    assert "道路积水" in page.text
    assert "110102012003001" in page.text
    assert case.evidence[0].sha256 in page.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert 'href="javascript:' not in page.text


def test_an_error_rate_of_one_answers_503_and_stores_nothing() -> None:
    config = PlatformConfig(workflow=FAST, faults=FaultConfig(error_rate=1.0))
    with PlatformServer(config) as server, httpx.Client(base_url=server.url) as client:
        response = file_case(client, grid_case("waterlog-110102012003001-0011"))
        listed = client.get("/api/v1/cases")

        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert listed.status_code == 200
        assert server.store.cases() == []


@pytest.mark.parametrize("style", ["drop", "http_500"])
def test_a_lost_response_is_recovered_by_retrying_with_the_same_key(
    style: LostResponseStyle,
) -> None:
    faults = FaultConfig(lose_response_rate=1.0, lost_response_style=style)
    case = grid_case("waterlog-110102012003001-0012")
    with (
        PlatformServer(PlatformConfig(workflow=FAST, faults=faults)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        if style == "drop":
            with pytest.raises(httpx.TransportError):
                file_case(client, case)
        else:
            assert file_case(client, case).status_code == 500
        stored_after_loss = [c.case_id for c in server.store.cases()]

        retry = file_case(client, case)

        assert stored_after_loss == ["BJ-000001"]
        assert retry.status_code == 200
        assert retry.json() == {
            "case_id": "BJ-000001",
            "external_id": case.case_key,
            "status": retry.json()["status"],
            "created": False,
        }
        assert [c.case_id for c in server.store.cases()] == ["BJ-000001"]


def test_an_outage_answers_503_until_it_ends(platform: PlatformServer, client: httpx.Client) -> None:
    case = grid_case("waterlog-110102012003001-0013")

    platform.set_down(True)
    health_down = client.get("/healthz")
    filed_down = file_case(client, case)
    platform.set_down(False)
    health_up = client.get("/healthz")
    filed_up = file_case(client, case)

    assert (health_down.status_code, filed_down.status_code) == (503, 503)
    assert health_up.json() == {"ok": True}
    assert filed_up.status_code == 201
    assert len(platform.store.cases()) == 1


def test_slow_responses_still_arrive() -> None:
    config = PlatformConfig(workflow=FAST, faults=FaultConfig(slow_s=0.05))
    with PlatformServer(config) as server, httpx.Client(base_url=server.url) as client:
        assert file_case(client, grid_case("waterlog-110102012003001-0014")).status_code == 201
