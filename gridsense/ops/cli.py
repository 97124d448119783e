"""Operator commands: ``doctor``, ``cases list|show`` and ``ops serve``.

``register(subparsers)`` adds them to the ``gridsense`` command. Everything here reads the
store read-only; nothing files, changes or deletes a case.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridsense.ops.cases import CaseView, case_updates, get_case, list_cases
from gridsense.ops.config import OpsConfig
from gridsense.ops.fmt import CLOSED_STATUSES, local, parse_time
from gridsense.ops.source import ro_connect

Out = Callable[[str], None]


def register(subparsers: Any) -> None:
    """Add ``doctor``, ``cases`` and ``ops`` to an ``argparse`` sub-parser set."""
    doctor = subparsers.add_parser("doctor", help="check broker, store, platform and clocks; say how to fix")
    doctor.add_argument("--config", required=True, help="YAML config file")
    doctor.add_argument(
        "--listen", type=float, default=3.0, help="seconds to watch device readings for clock skew"
    )
    doctor.set_defaults(func=cmd_doctor)

    cases = subparsers.add_parser("cases", help="follow the cases this pipeline filed").add_subparsers(
        dest="cases_command", required=True
    )
    ls = cases.add_parser("list", help="cases, open first, newest first")
    ls.add_argument("--config", required=True)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--grid", help="only this grid")
    ls.add_argument("--open", action="store_true", help="only cases the platform has not closed")
    ls.add_argument("--follow", action="store_true", help="keep watching; print new cases and status changes")
    ls.add_argument("--interval", type=float, default=2.0, help="seconds between looks with --follow")
    ls.set_defaults(func=cmd_cases_list)
    show = cases.add_parser("show", help="one case: what, where, deadline, status, evidence, updates")
    show.add_argument("key", help="case key (gs-…) or the platform's case id")
    show.add_argument("--config", required=True)
    show.set_defaults(func=cmd_cases_show)

    ops = subparsers.add_parser("ops", help="the operations page").add_subparsers(
        dest="ops_command", required=True
    )
    serve = ops.add_parser("serve", help="serve the operations page over an existing store, read-only")
    serve.add_argument("--config", required=True)
    serve.add_argument("--host", default=None, help="default: ops.host of the config, else 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: ops.port of the config, else 8090")
    serve.add_argument("--evidence-dir", type=Path, default=None, help="folder of camera snapshots")
    serve.set_defaults(func=cmd_ops_serve)


def _config(path: str) -> Any:
    from gridsense.config import load_config

    return load_config(Path(path))


def _ops_config(cfg: Any) -> OpsConfig:
    ops = getattr(cfg, "ops", None)
    return ops if isinstance(ops, OpsConfig) else OpsConfig()


def cmd_doctor(args: argparse.Namespace, out: Out = print) -> int:
    from gridsense.doctor import run_doctor

    return run_doctor(_config(args.config), out, listen_s=args.listen)


def _open_store(cfg: Any, out: Out) -> sqlite3.Connection | None:
    path = Path(cfg.store.path)
    if not path.exists():
        out(f"no store at {path} (has the pipeline run with this config?)")
        return None
    return ro_connect(path)


def _remaining(deadline: str, closed: bool, now: datetime) -> str:
    if closed:
        return "done"
    ts = parse_time(deadline)
    if ts is None:
        return "?"
    secs = int((ts - now).total_seconds())
    sign = "" if secs >= 0 else "OVERDUE "
    secs = abs(secs)
    return f"{sign}{secs // 3600}h{secs % 3600 // 60:02d}m"


def case_line(c: CaseView, now: datetime) -> str:
    return "  ".join(
        [
            f"{c.platform_case_id or '-':<10}",
            f"{c.status:<8}",
            f"{c.level or '-':<6}",
            f"{c.category_code:<15}",
            c.grid_code,
            f"{_remaining(c.deadline, c.closed, now):>14}",
            c.title,
        ]
    )


HEADER = "  ".join(
    ["platform  ", "status  ", "level ", "category       ", "grid           ", "      deadline", "title"]
)


def _select(conn: sqlite3.Connection, args: argparse.Namespace) -> list[CaseView]:
    cases = list_cases(conn, max(args.limit, 1), args.grid)
    return [c for c in cases if not (args.open and c.status in CLOSED_STATUSES)]


def cmd_cases_list(args: argparse.Namespace, out: Out = print, stop: Callable[[], bool] | None = None) -> int:
    cfg = _config(args.config)
    conn = _open_store(cfg, out)
    if conn is None:
        return 1
    try:
        cases = _select(conn, args)
        now = datetime.now(UTC)
        out(HEADER)
        for c in cases:
            out(case_line(c, now))
        if not args.follow:
            return 0
        seen = {c.case_key: (c.status, c.level, c.platform_case_id) for c in cases}
        out(f"-- following {cfg.store.path} (Ctrl-C to stop)")
        while not (stop is not None and stop()):
            time.sleep(args.interval)
            now = datetime.now(UTC)
            for c in reversed(_select(conn, args)):
                state = (c.status, c.level, c.platform_case_id)
                before = seen.get(c.case_key)
                if before == state:
                    continue
                what = "NEW    " if before is None else "CHANGED"
                out(f"{local(now)} {what} {case_line(c, now)}")
                seen[c.case_key] = state
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        conn.close()


def cmd_cases_show(args: argparse.Namespace, out: Out = print) -> int:
    cfg = _config(args.config)
    conn = _open_store(cfg, out)
    if conn is None:
        return 1
    try:
        c = get_case(conn, args.key)
        if c is None:
            out(f"no case {args.key!r} in {cfg.store.path}")
            return 1
        updates = case_updates(conn, c.case_key)
    finally:
        conn.close()
    b = c.body
    place = b.get("place") or {}
    now = datetime.now(UTC)
    rows = [
        ("title", c.title),
        ("case key", c.case_key),
        ("platform id", c.platform_case_id or "not filed yet"),
        ("status", f"{c.status}" + (f" (code {c.status_code})" if c.status_code else "")),
        (
            "outbox",
            f"{c.outbox_status} after {c.attempts} attempt(s)"
            + (f": {c.last_error}" if c.last_error else ""),
        ),
        ("category", f"{c.category_code} {c.category_name}"),
        ("level", f"{c.level or '-'}  severity {c.severity or '-'}"),
        ("grid", f"{c.grid_code}  {place.get('street_name', '')} {place.get('community_name', '')}"),
        ("address", str(place.get("address", ""))),
        ("responsible", str(b.get("responsible_unit", ""))),
        ("filed", local(c.filed_at)),
        (
            "deadline",
            f"{local(c.deadline)}  ({_remaining(c.deadline, c.closed, now)}; {b.get('deadline_basis', '')})",
        ),
        (
            "incident",
            f"{c.incident_id} {'closed ' + local(c.incident_closed_at) if c.incident_closed_at else 'open'}",
        ),
    ]
    for k, v in rows:
        out(f"{k:>12}  {v}")
    out("")
    out(f"{'':>12}  {c.description}")
    for ev in b.get("evidence") or []:
        out(f"{'evidence':>12}  {ev.get('kind')}: {ev.get('description')} {ev.get('url') or ''}".rstrip())
    for u in updates:
        out(f"{'update':>12}  {local(u.at)} {u.kind} {u.level or ''} {u.note} [{u.outbox_status}]")
    return 0


def cmd_ops_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridsense.ops.app import create_ops_app
    from gridsense.ops.source import StoreSource

    cfg = _config(args.config)
    ops = _ops_config(cfg)
    if args.evidence_dir is not None:
        ops = ops.model_copy(update={"evidence_dir": args.evidence_dir})
    if not Path(cfg.store.path).exists():
        print(f"no store at {cfg.store.path}: run the pipeline first, or fix store.path", file=sys.stderr)
        return 1
    source = StoreSource.from_config(cfg, ops)
    host = args.host or ops.host
    port = args.port if args.port is not None else ops.port
    print(f"operations page (read-only) on http://{host}:{port}/", file=sys.stderr)
    uvicorn.run(
        create_ops_app(source, ops), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    return 0
