"""``gridsense assets …``: print signed tags, and list overdue inspections.

``register(subparsers)`` adds the commands to the ``gridsense`` parser. Both read the
``assets:`` section of the config file (and ``store.path`` / ``registry.grids`` beside it);
relative paths are relative to the file, as everywhere in gridsense.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gridsense.config import load_config
from gridsense.errors import ConfigError
from gridsense.model.registry import GridRegistry
from rules.assets.config import AssetConfig
from rules.assets.labels import write_print_run
from rules.assets.overdue import DAY_MS, OverdueInspections
from rules.assets.registry import AssetRegistry
from rules.assets.store import SCHEMA
from rules.assets.tags import KeyRing


@dataclass(frozen=True)
class Settings:
    """What the asset commands need from a gridsense config file."""

    assets: AssetConfig
    store: Path
    grids: Path


def load_settings(path: Path) -> Settings:
    """The ``assets`` section (and the store and grid paths) of a gridsense config file."""
    cfg = load_config(path)
    return Settings(cfg.assets, cfg.store.path, cfg.registry.grids)


def select(registry: AssetRegistry, grids: list[str], types: list[str], codes: list[str]) -> list[int]:
    """Rows of active assets in any of ``grids`` (code prefixes), ``types`` and ``codes`` (empty = all)."""
    mask = registry.active.copy()
    if grids:
        in_grid = np.zeros(len(registry), dtype=bool)
        for g in grids:
            if not (g.isascii() and g.isdigit() and 1 <= len(g) <= 15):
                raise ConfigError(f"--grid {g!r} must be a grid-code prefix (digits)")
            in_grid |= registry.grid // 10 ** (15 - len(g)) == int(g)
        mask &= in_grid
    if types:
        unknown = set(types) - set(registry.type_names)
        if unknown:
            raise ConfigError(f"--type {', '.join(sorted(unknown))}: not a configured asset type")
        mask &= np.isin(registry.type_idx, [registry.type_names.index(t) for t in types])
    if codes:
        mask &= np.isin(registry.code, [int(c) for c in codes if c.isascii() and c.isdigit()])
    return [int(i) for i in np.flatnonzero(mask)]


def cmd_tags(args: argparse.Namespace) -> int:
    s = load_settings(Path(args.config))
    cfg = s.assets
    keyring = KeyRing(cfg.keyring)
    if keyring.signing_key_id is None:
        raise ConfigError(f"{args.config}: assets.keyring has no key in state 'sign'")
    grids = GridRegistry.load(s.grids)
    registry = AssetRegistry.load(args.registry or cfg.registry, cfg.types, grids)
    chosen = select(registry, args.grid or [], args.types or [], args.code or [])
    total = len(chosen)
    run_name = args.run_name or "tags-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    step = max(1, total // 20)
    print(f"printing {total} tags with key {keyring.signing_key_id} to {args.out}", flush=True)

    def progress(done: int) -> None:
        if done % step == 0 or done == total:
            print(f"  {done}/{total} labels", flush=True)

    run = write_print_run(registry, chosen, keyring, Path(args.out), cfg.labels, run_name, progress)
    print(f"wrote {run.labels} PNG to {run.png_dir}, {run.labels} SVG to {run.svg_dir}, sheet {run.pdf}")
    if run.cjk_font is None:
        print(
            "warning: no Chinese font found; PNG labels show type names instead of asset names "
            "(install fonts-noto-cjk or set assets.labels.font). SVG and PDF are complete.",
            file=sys.stderr,
        )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Which assets the next sweep would file as overdue; writes nothing (the pipeline files)."""
    s = load_settings(Path(args.config))
    cfg = s.assets
    registry = AssetRegistry.load(cfg.registry, cfg.types, GridRegistry.load(s.grids))
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        raise ConfigError("--at needs a UTC offset, e.g. 2026-05-04T08:00:00+08:00")
    if s.store.exists():
        conn = sqlite3.connect(str(s.store), isolation_level=None)
    else:
        print(f"note: no store at {s.store}; sweeping as if no tag had been scanned yet", file=sys.stderr)
        conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        rows, due = OverdueInspections(cfg, registry).overdue(conn, at)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    now_ms = int(at.timestamp() * 1000)
    by_type = Counter(registry.type_names[int(registry.type_idx[i])] for i in rows.tolist())
    print(
        f"{len(rows)} of {len(registry)} assets overdue for inspection at {at.isoformat()} (no case open yet)"
    )
    for name, n in sorted(by_type.items()):
        print(f"  {name}: {n}")
    for i, due_ms in list(zip(rows.tolist(), due.tolist(), strict=True))[: args.limit]:
        a = registry.asset(i)
        days = (now_ms - int(due_ms)) / DAY_MS
        print(f"{a.asset_id}  {a.short_id}  {a.type:<14} {a.grid_code}  {days:7.1f} d  {a.name}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``assets tags`` and ``assets sweep`` to the ``gridsense`` command's subparsers."""
    assets = subparsers.add_parser(
        "assets", help="QR-tagged city assets: print tags, list overdue inspections"
    )
    sub = assets.add_subparsers(dest="assets_command", required=True)
    tags = sub.add_parser("tags", help="sign and render tags: PNG and SVG per asset, one PDF sheet per run")
    tags.add_argument("--config", required=True, help="YAML config file (its assets: section)")
    tags.add_argument("--out", required=True, type=Path, help="folder for png/, svg/ and the PDF sheet")
    tags.add_argument("--registry", type=Path, help="asset registry to print (default: the config's)")
    tags.add_argument("--grid", action="append", help="only grid codes starting with this (repeatable)")
    tags.add_argument("--type", action="append", dest="types", help="only this asset type (repeatable)")
    tags.add_argument("--code", action="append", help="only this asset code (repeatable)")
    tags.add_argument("--run-name", help="name of the PDF sheet (default: tags-<UTC time>)")
    tags.set_defaults(func=cmd_tags)
    sweep = sub.add_parser("sweep", help="list assets overdue for inspection (read-only)")
    sweep.add_argument("--config", required=True, help="YAML config file")
    sweep.add_argument("--at", help="ISO 8601 time with offset to sweep at (default: now)")
    sweep.add_argument("--limit", type=int, default=50, help="assets listed at most")
    sweep.set_defaults(func=cmd_sweep)
