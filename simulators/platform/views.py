"""JSON views of platform cases, as the API answers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simulators.platform.store import PlatformCase


def case_view(case: PlatformCase, now: datetime, *, with_updates: bool = True) -> dict[str, Any]:
    """A case with its status and history as of ``now``; list views leave the updates out."""
    history = case.history(now)
    status = history[-1].status
    view: dict[str, Any] = {
        "case_id": case.case_id,
        "external_id": case.external_id,
        "status": status.value,
        "status_code": status.code,
        "deadline": case.deadline.isoformat(),
        "closed_on_time": case.closed_on_time(now),
        "history": [
            {
                "status": change.status.value,
                "status_code": change.status.code,
                "at": change.at.isoformat(),
            }
            for change in history
        ],
        "case": case.case.model_dump(mode="json"),
        "update_count": len(case.updates),
    }
    if with_updates:
        view["updates"] = [update.model_dump(mode="json") for update in case.updates.values()]
    return view
