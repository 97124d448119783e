"""The platform's Open311 service requests: stored, walked through the workflow, due in working time.

A request's deadline (``expected_datetime``) is its service's handling limit from the
category table, added in the same working-time calendar the bridge uses for a case's
deadline, so the indicators count both kinds of case alike.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from gridsense.errors import ConfigError
from gridsense.model.catalog import Catalog, CategoryRow
from gridsense.model.tables import read_rows, validate_row
from gridsense.model.worktime import WorkCalendar
from simulators.platform.config import Open311ServiceConfig, PlatformConfig
from simulators.platform.store import Clock
from simulators.platform.workflow import CaseStatus, StatusChange, history_at, plan_path


class UnknownRequest(LookupError):
    """No request has this id or token."""


def default_services() -> list[Open311ServiceConfig]:
    """One service per row of the shipped category table: EV-0111 道路积水, CP-0103 雨水井盖, …"""
    path = Path(str(resources.files("gridsense").joinpath("data", "categories.csv")))
    _, rows = read_rows(path, needs_crs=False)
    services = []
    for raw in rows:
        row = validate_row(CategoryRow, raw, path)
        services.append(
            Open311ServiceConfig(
                service_code=f"{'EV' if row.kind == 'event' else 'CP'}-{row.code}",
                service_name=row.name_zh,
                category=row.ref,
                description=row.name_en,
            )
        )
    return services


@dataclass
class ServiceRequest:
    """One Open311 request with its planned workflow path (like ``PlatformCase``)."""

    request_id: str
    service: Open311ServiceConfig
    fields: dict[str, str]  # the POSTed form, api_key left out
    attributes: dict[str, str]
    requested_at: datetime
    deadline: datetime
    path: list[StatusChange]
    token: str | None = None
    token_ready_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def history(self, now: datetime) -> list[StatusChange]:
        return history_at(self.path, now)

    def status(self, now: datetime) -> CaseStatus:
        return self.history(now)[-1].status

    def closed_on_time(self, now: datetime) -> bool | None:
        last = self.history(now)[-1]
        return None if last.status is not CaseStatus.CLOSED else last.at <= self.deadline


class ServiceRequestStore:
    """Requests by id and by token; safe to use from several threads."""

    def __init__(
        self,
        config: PlatformConfig,
        clock: Clock,
        catalog: Catalog | None = None,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._catalog = catalog or Catalog.default()
        self._calendar = calendar or WorkCalendar.default()
        self._services = {s.service_code: s for s in (config.open311.services or default_services())}
        self._rng = random.Random(config.workflow.seed + 311)
        self._lock = threading.Lock()
        self._by_id: dict[str, ServiceRequest] = {}
        self._by_token: dict[str, str] = {}

    def now(self) -> datetime:
        return self._clock()

    def services(self) -> list[Open311ServiceConfig]:
        return list(self._services.values())

    def service(self, code: str) -> Open311ServiceConfig | None:
        return self._services.get(code)

    def _deadline(self, service: Open311ServiceConfig, at: datetime) -> datetime:
        row = self._catalog.get(service.category)
        try:
            return self._calendar.add(at, row.limit, row.limit_unit)
        except ConfigError:  # no calendar for that year: count clock hours rather than fail
            hours = row.limit * (7 if row.limit_unit == "working_days" else 1)
            return at + timedelta(hours=hours)

    def create(
        self,
        service: Open311ServiceConfig,
        fields: dict[str, str],
        attributes: dict[str, str],
        with_token: bool,
    ) -> ServiceRequest:
        with self._lock:
            n = len(self._by_id) + 1
            now = self.now()
            deadline = self._deadline(service, now)
            request = ServiceRequest(
                request_id=str(300000 + n),
                service=service,
                fields=fields,
                attributes=attributes,
                requested_at=now,
                deadline=deadline,
                path=plan_path(now, self._config.workflow, self._rng, deadline),
            )
            if with_token:
                request.token = f"T{n:06d}"
                request.token_ready_at = now + timedelta(seconds=self._config.open311.token_delay_s)
                self._by_token[request.token] = request.request_id
            self._by_id[request.request_id] = request
            return request

    def get(self, request_id: str) -> ServiceRequest:
        with self._lock:
            found = self._by_id.get(request_id)
        if found is None:
            raise UnknownRequest(request_id)
        return found

    def by_token(self, token: str) -> ServiceRequest:
        with self._lock:
            request_id = self._by_token.get(token)
        if request_id is None:
            raise UnknownRequest(token)
        return self.get(request_id)

    def requests(self) -> list[ServiceRequest]:
        """Every request, in filing order."""
        with self._lock:
            return list(self._by_id.values())
