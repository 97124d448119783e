"""Loading validated tables (registries, the category table) from CSV or YAML files.

Every registry file declares its coordinate system once, for the whole file:
a CSV file starts with the directive line ``# crs: gcj02``; a YAML file has a
top-level ``crs:`` key next to its ``rows:`` list. A row that fails validation is
reported with the file and the line it sits on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gridsense.errors import ConfigError
from gridsense.model.geo import CRS

M = TypeVar("M", bound=BaseModel)

_CRS_DIRECTIVE = re.compile(r"^#\s*crs\s*:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Row:
    """One raw row and where it came from."""

    values: dict[str, Any]
    line: int


def _format_validation(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "row"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _parse_crs(value: object, where: str) -> CRS:
    try:
        return CRS(str(value).strip().lower())
    except ValueError:
        known = ", ".join(c.value for c in CRS)
        raise ConfigError(f"{where}: unknown coordinate system {value!r} (use one of {known})") from None


def read_rows(path: Path, *, needs_crs: bool) -> tuple[CRS | None, Iterator[Row]]:
    """Open a CSV or YAML table and return its declared CRS and its rows with line numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (save it as UTF-8; GBK is not read): {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() in {".yaml", ".yml"}:
        return _yaml_rows(path, text, needs_crs)
    return _csv_rows(path, text, needs_crs)


def _csv_rows(path: Path, text: str, needs_crs: bool) -> tuple[CRS | None, Iterator[Row]]:
    lines = text.splitlines()
    crs: CRS | None = None
    first_data = 0
    for i, line in enumerate(lines):
        if not line.strip():  # a blank line before the header is not the header
            continue
        if not line.startswith("#"):
            first_data = i
            break
        m = _CRS_DIRECTIVE.match(line)
        if m:
            crs = _parse_crs(m.group(1), f"{path}:{i + 1}")
    else:
        first_data = len(lines)
    if needs_crs and crs is None:
        raise ConfigError(
            f"{path}:1: no coordinate system declared; start the file with a line "
            "'# crs: wgs84' (or gcj02, bd09)"
        )

    def rows() -> Iterator[Row]:
        reader = csv.DictReader(io.StringIO("\n".join(lines[first_data:])))
        for rec in reader:
            line = first_data + reader.line_num
            if None in rec:
                raise ConfigError(f"{path}:{line}: more fields than the header has")
            # An empty cell is a missing value, so the field's default applies.
            yield Row({k: v for k, v in rec.items() if v != ""}, line)

    return crs, rows()


def _yaml_rows(path: Path, text: str, needs_crs: bool) -> tuple[CRS | None, Iterator[Row]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise ConfigError(f"{path}:1: expected a mapping with a 'rows:' list")
    crs = _parse_crs(doc["crs"], f"{path}:1") if "crs" in doc else None
    if needs_crs and crs is None:
        raise ConfigError(f"{path}:1: no coordinate system declared; add 'crs: wgs84' (or gcj02, bd09)")
    assert isinstance(node, yaml.MappingNode)
    seq = next(v for k, v in node.value if k.value == "rows")
    lines = [item.start_mark.line + 1 for item in seq.value]

    def rows() -> Iterator[Row]:
        for item, line in zip(doc["rows"], lines, strict=True):
            if not isinstance(item, dict):
                raise ConfigError(f"{path}:{line}: each row must be a mapping")
            yield Row(item, line)

    return crs, rows()


def validate_row(model: type[M], row: Row, path: Path, **context: Any) -> M:
    """Validate one row into ``model``; a failure names the file and line."""
    try:
        return model.model_validate(row.values, context=context or None)
    except ValidationError as exc:
        raise ConfigError(f"{path}:{row.line}: {_format_validation(exc)}") from None


def yaml_line(node: Any, loc: tuple[Any, ...]) -> int | None:
    """Walk a composed YAML node along a pydantic error location to find its line."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is None:
                return line
            # The key's line: an unknown section's value starts on the line below its key.
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_yaml_model(path: Path, model: type[M], max_bytes: int = 4_000_000) -> M:
    """Read a YAML file into ``model``; every error names the file and the line."""
    try:
        if path.stat().st_size > max_bytes:
            raise ConfigError(f"{path}: larger than {max_bytes} bytes")
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (save it as UTF-8; GBK is not read): {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            line = yaml_line(node, e["loc"])
            where = f"{path}:{line}" if line else str(path)
            msgs.append(f"{where}: {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise ConfigError("\n".join(msgs)) from None
