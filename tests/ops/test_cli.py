"""``cases list|show``, ``ops serve`` and ``doctor`` as a user types them."""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from gridsense.embedded_broker import free_port
from gridsense.ops.cli import cmd_cases_list, register
from tests.ops.seeded import GRID, SCRIPT, Seeded, seed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridsense")
    register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.fixture
def seeded_config(tmp_path: Path) -> tuple[Path, Seeded]:
    s = seed(tmp_path)
    cfg = tmp_path / "gridsense.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"path": str(s.store)}}))
    return cfg, s


def run(argv: list[str]) -> tuple[int, list[str]]:
    args = parser().parse_args(argv)
    lines: list[str] = []
    return args.func(args, lines.append), lines


def test_cases_list_and_show(seeded_config: tuple[Path, Seeded]) -> None:
    cfg, s = seeded_config
    code, lines = run(["cases", "list", "--config", str(cfg)])
    assert code == 0
    assert lines[0].startswith("platform")
    assert any("BJ-000001" in ln and "派遣" in ln and GRID in ln and "orange" in ln for ln in lines)
    assert len(lines) == 3  # header and two cases
    code, lines = run(["cases", "list", "--config", str(cfg), "--grid", GRID])
    assert code == 0 and len(lines) == 2
    code, lines = run(["cases", "show", "BJ-000001", "--config", str(cfg)])
    text = "\n".join(lines)
    assert code == 0
    assert s.grid_case in text and "派遣 (code 3)" in text and "event:0111 道路积水" in text
    assert f"{SCRIPT}近1小时降雨" in text  # a terminal shows text as it is
    assert "deadline" in text
    code, lines = run(["cases", "show", s.camera_case, "--config", str(cfg)])
    assert code == 0 and any("snapshot" in ln and "file://" in ln for ln in lines)
    code, lines = run(["cases", "show", "gs-nope", "--config", str(cfg)])
    assert code == 1 and "no case" in lines[0]


def test_cases_list_follow_prints_changes(seeded_config: tuple[Path, Seeded]) -> None:
    cfg, s = seeded_config
    args = parser().parse_args(["cases", "list", "--config", str(cfg), "--follow", "--interval", "0.05"])
    lines: list[str] = []
    looks = iter(range(1000))

    def stop() -> bool:
        n = next(looks)
        if n == 2:
            conn = sqlite3.connect(s.store, isolation_level=None)
            conn.execute(
                "UPDATE cases SET status = '处置', status_at_ms = 1 WHERE case_key = ?", (s.grid_case,)
            )
            conn.close()
        return n > 5 and any("CHANGED" in ln for ln in lines)

    assert cmd_cases_list(args, lines.append, stop) == 0
    changed = [ln for ln in lines if "CHANGED" in ln]
    assert len(changed) == 1 and "处置" in changed[0] and "BJ-000001" in changed[0]


def test_cases_list_without_a_store(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"path": str(tmp_path / "none.db")}}))
    code, lines = run(["cases", "list", "--config", str(cfg)])
    assert code == 1 and "no store" in lines[0]


def test_doctor_parses() -> None:
    args = parser().parse_args(["doctor", "--config", "x.yaml", "--listen", "1"])
    assert args.listen == 1.0 and args.func.__name__ == "cmd_doctor"


@pytest.mark.integration
def test_ops_serve_serves_an_existing_store_read_only(seeded_config: tuple[Path, Seeded]) -> None:
    cfg, s = seeded_config
    port = free_port()
    script = (
        "import sys, argparse\n"
        "from gridsense.ops.cli import register\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers(dest='c', required=True))\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "ops", "serve", "--config", str(cfg), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "ops serve did not come up"
                time.sleep(0.2)
        assert resp.status_code == 200 and s.grid_case in resp.text
        assert "read-only: no pipeline attached" in resp.text
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["ready"] is True
    finally:
        proc.terminate()
        proc.wait(15)
