"""``gridsense assets tags`` and ``gridsense assets sweep``, through an argparse parser built
the way ``gridsense.cli`` builds its own."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from gridsense.errors import ConfigError
from rules.assets.cli import load_settings, register
from rules.assets.store import SCHEMA

CONFIG = """\
store:
  path: state/gridsense.db
assets:
  enabled: true
  keyring:
    - {id: K1, secret: "previous-test-key-11111111111111111111", state: verify}
    - {id: K2, secret: "current-test-key-222222222222222222222", state: sign}
"""


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gridsense")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "gridsense.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tags_writes_png_svg_and_one_pdf_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "print"
    assert (
        run("assets", "tags", "--config", str(config(tmp_path)), "--out", str(out), "--run-name", "r1") == 0
    )
    text = capsys.readouterr().out
    assert "printing 12 tags with key K2" in text and "12/12 labels" in text
    assert len(list((out / "png").glob("*.png"))) == 12  # the retired kiosk gets no new tag
    assert len(list((out / "svg").glob("*.svg"))) == 12
    assert (out / "r1.pdf").read_bytes().startswith(b"%PDF")


def test_tags_for_one_grid_and_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "print"
    cfg = str(config(tmp_path))
    run("assets", "tags", "--config", cfg, "--out", str(out), "--grid", "110102012", "--type", "ancient_tree")
    assert sorted(p.stem for p in (out / "png").glob("*.png")) == ["1101020401000001", "1101020401000002"]
    with pytest.raises(ConfigError, match="not a configured asset type"):
        run("assets", "tags", "--config", cfg, "--out", str(out), "--type", "bridge")


def test_tags_from_another_registry_file(tmp_path: Path) -> None:
    reg = tmp_path / "one.csv"
    reg.write_text(
        "# crs: wgs84\ncode,type,name,grid_code,lat,lon,owner\n"
        "1101020121000009,newsstand,新亭,110102012001001,39.9444,116.3746,站\n",
        encoding="utf-8",
    )
    out = tmp_path / "print"
    run("assets", "tags", "--config", str(config(tmp_path)), "--out", str(out), "--registry", str(reg))
    assert [p.stem for p in (out / "png").glob("*.png")] == ["1101020121000009"]


def test_sweep_lists_overdue_assets_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config(tmp_path))
    store = tmp_path / "state" / "gridsense.db"
    store.parent.mkdir()
    sqlite3.connect(store).executescript(SCHEMA)
    assert run("assets", "sweep", "--config", cfg, "--at", "2026-05-04T09:00:00+08:00") == 0
    text = capsys.readouterr().out
    assert text.startswith("2 of 13 assets overdue")
    assert "1101020101000001" in text and "1101020401000002" in text
    # Read-only: the baseline of never-scanned assets was not fixed by this look.
    run("assets", "sweep", "--config", cfg, "--at", "2026-06-04T09:00:00+08:00")
    assert capsys.readouterr().out.startswith("2 of 13")
    assert sqlite3.connect(store).execute("SELECT COUNT(*) FROM asset_sweep_state").fetchone() == (0,)


def test_config_errors_point_at_the_line(tmp_path: Path) -> None:
    bad = CONFIG.replace("state: sign", "state: signing")
    with pytest.raises(ConfigError, match=r"gridsense.yaml:7: assets.keyring.1.state"):
        load_settings(config(tmp_path, bad))
    unsigned = CONFIG.replace("state: sign", "state: verify")
    with pytest.raises(ConfigError, match="no key in state 'sign'"):
        # enabled: false lets the section load; printing still needs a signing key
        run(
            "assets",
            "tags",
            "--config",
            str(config(tmp_path, unsigned.replace("enabled: true", "enabled: false"))),
            "--out",
            str(tmp_path),
        )


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    s = load_settings(config(tmp_path))
    assert s.store == tmp_path / "state" / "gridsense.db"
    assert s.assets.registry.is_absolute()
