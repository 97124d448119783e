"""``gridsense bridge deadletters list|show|replay|discard``: outbox rows the platform refused.

Replay after fixing what made the platform refuse (a token, an api key, a service code
mapping): the row goes back to ``pending`` in its old place in its grid's order and is
delivered by the running bridge. Discard deletes the row for good.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.contract import DeadLetterRow, OutboxStore


def register(subparsers: Any) -> None:
    """Add ``bridge deadletters …`` to the ``gridsense`` command's subparsers."""
    bridge = subparsers.add_parser("bridge", help="the case bridge").add_subparsers(
        dest="bridge_command", required=True
    )
    dl = bridge.add_parser("deadletters", help="outbox rows the platform refused").add_subparsers(
        dest="deadletters_command", required=True
    )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = dl.add_parser(name, help=help_text)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", help="gridsense YAML config (its store, or its PostgreSQL outbox)")
        where.add_argument("--db", help="path of the SQLite state database")
        where.add_argument("--dsn", help="PostgreSQL outbox connection string")
        p.add_argument("--schema", default="gridsense", help="PostgreSQL schema (with --dsn)")
        return p

    p = command("list", "list refused rows, oldest first")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_list)
    p = command("show", "one refused row with the platform's answer and the message body")
    p.add_argument("seq", type=int)
    p.set_defaults(func=cmd_show)
    for name, func, text in (
        ("replay", cmd_replay, "put refused rows back in the queue (after a config fix)"),
        ("discard", cmd_discard, "delete refused rows for good"),
    ):
        p = command(name, text)
        p.add_argument("seq", type=int, nargs="*", help="row numbers (seq) from `list`")
        p.add_argument("--all", action="store_true", help="every refused row")
        p.set_defaults(func=func)


@contextmanager
def _outbox(args: argparse.Namespace) -> Iterator[OutboxStore]:
    dsn, schema, db = args.dsn, args.schema, args.db
    if args.config:
        from bridge.config import PostgresOutboxConfig
        from gridsense.config import load_config

        cfg = load_config(Path(args.config))
        pg = getattr(cfg.bridge, "outbox", None)  # present once the PostgreSQL outbox is wired in
        if isinstance(pg, PostgresOutboxConfig):
            dsn, schema = pg.dsn.get_secret_value(), pg.db_schema
        else:
            db = str(cfg.store.path)
    if dsn:
        from bridge.pg_outbox import PgCaseOutbox, connect_pg

        pg_conn = connect_pg(dsn, schema)
        try:
            yield PgCaseOutbox(pg_conn, worker_id="cli")
        finally:
            pg_conn.close()
        return
    from bridge.outbox import CaseOutbox
    from gridsense.errors import ConfigError

    if not Path(db).exists():
        raise ConfigError(f"{db}: no state database there")
    from gridsense.db import connect

    conn = connect(db, create=False)
    try:
        yield CaseOutbox(conn)
    finally:
        conn.close()


def _summary(row: DeadLetterRow) -> str:
    error = row.last_error.replace("\n", " ")
    return f"{row.seq:>8}  {row.op:<6} {row.grid_code}  {row.attempts:>3}  {row.message_key}  {error[:120]}"


def cmd_list(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        rows = outbox.dead_letters(args.limit)
    print(f"{'seq':>8}  {'op':<6} {'grid':<15}  {'try':>3}  message key  error")
    for row in rows:
        print(_summary(row))
    print(f"{len(rows)} refused row(s)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        row = outbox.dead_letter(args.seq)
    if row is None:
        print(f"no refused row {args.seq}", file=sys.stderr)
        return 1
    print(f"seq:         {row.seq}\nop:          {row.op}\nmessage key: {row.message_key}")
    print(f"case key:    {row.case_key}\ngrid:        {row.grid_code}\nattempts:    {row.attempts}")
    print(f"error:       {row.last_error}")
    print("body:")
    print(json.dumps(json.loads(row.body), ensure_ascii=False, indent=2))
    return 0


def _targets(outbox: OutboxStore, args: argparse.Namespace) -> list[int]:
    if args.all:
        return [r.seq for r in outbox.dead_letters(limit=1_000_000)]
    if not args.seq:
        raise SystemExit("name the rows (seq …) or use --all")
    return list(args.seq)


def cmd_replay(args: argparse.Namespace) -> int:
    missing = 0
    with _outbox(args) as outbox:
        for seq in _targets(outbox, args):
            if outbox.replay(seq):
                print(f"replayed {seq}")
            else:
                missing += 1
                print(f"no refused row {seq}", file=sys.stderr)
    return 1 if missing else 0


def cmd_discard(args: argparse.Namespace) -> int:
    missing = 0
    with _outbox(args) as outbox:
        for seq in _targets(outbox, args):
            row = outbox.dead_letter(seq)
            if row is not None and outbox.discard(seq):
                print(f"discarded {_summary(row)}")
            else:
                missing += 1
                print(f"no refused row {seq}", file=sys.stderr)
    return 1 if missing else 0
