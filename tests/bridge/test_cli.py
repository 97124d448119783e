"""``gridsense bridge deadletters``: list, show, replay and discard refused rows, on either outbox."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from bridge.cli import register
from bridge.contract import OutboxStore
from bridge.outbox import CaseOutbox
from bridge.pg_outbox import PgCaseOutbox
from tests.bridge.conftest import build_cases
from tests.fixtures.postgres import PgSchema

pytestmark = pytest.mark.integration


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="gridsense")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code = int(args.func(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def refuse_two(outbox: OutboxStore) -> list[int]:
    cases = build_cases(2)
    with outbox.transaction():
        for case in cases:
            outbox.enqueue_case(case)
    for row in outbox.due():
        outbox.reject(row, f'http_422: {{"detail":"bad {row.grid_code}"}}')
    return [d.seq for d in outbox.dead_letters()]


def test_discard_and_replay_by_row(
    state_db: sqlite3.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = CaseOutbox(state_db)
    first, second = refuse_two(outbox)
    db = ["--db", str(tmp_path / "state.db")]

    code, out, _ = cli(capsys, "bridge", "deadletters", "discard", str(first), *db)
    assert code == 0 and out.startswith(f"discarded {first:>8}  create")
    code, out, _ = cli(capsys, "bridge", "deadletters", "replay", str(second), *db)
    assert (code, out) == (0, f"replayed {second}\n")
    code, _, err = cli(capsys, "bridge", "deadletters", "replay", str(first), *db)
    assert (code, err) == (1, f"no refused row {first}\n")
    code, _, err = cli(capsys, "bridge", "deadletters", "show", str(second), *db)
    assert (code, err) == (1, f"no refused row {second}\n")

    assert outbox.counts() == {"pending": 1}
    assert outbox.dead_letters() == []


def test_the_config_names_the_state_database(
    state_db: sqlite3.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_two(CaseOutbox(state_db))
    config = tmp_path / "gridsense.yaml"
    config.write_text("store:\n  path: state.db\n")

    code, out, _ = cli(capsys, "bridge", "deadletters", "list", "--config", str(config))

    assert code == 0
    assert out.count('http_422: {"detail":"bad ') == 2
    assert out.endswith("2 refused row(s)\n")


def test_the_postgresql_outbox_is_reached_by_its_dsn(
    pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = PgCaseOutbox(pg_schema.connect(), "worker")
    first, second = refuse_two(outbox)
    where = ["--dsn", pg_schema.dsn, "--schema", pg_schema.schema]

    code, out, _ = cli(capsys, "bridge", "deadletters", "list", *where)
    assert code == 0 and out.endswith("2 refused row(s)\n")
    code, out, _ = cli(capsys, "bridge", "deadletters", "replay", "--all", *where)
    assert (code, out) == (0, f"replayed {first}\nreplayed {second}\n")

    assert outbox.counts() == {"pending": 2}
