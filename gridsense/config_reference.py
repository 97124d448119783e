"""The config reference table, generated from the models so the README cannot drift."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gridsense.config import GridsenseConfig


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        out.extend(_submodels(arg))
    return out


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} item(s), see below"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        return f"`{value.name}` (packaged)" if value.is_absolute() else f"`{value}`"
    return f"`{json.dumps(value, default=str, ensure_ascii=False)}`"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def reference() -> str:
    """A markdown table with one row per setting, depth first."""
    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            subs = _submodels(field.annotation)
            if subs and len(subs) == 1:
                is_list = get_origin(field.annotation) is list
                walk(subs[0], f"{path}[]." if is_list else f"{path}.")
                continue
            if len(subs) > 1:  # a discriminated union: document each variant
                for sub in subs:
                    kind = sub.model_fields["type"].default
                    walk(sub, f"{path}.({kind}) ")
                continue
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")

    walk(GridsenseConfig, "")
    return "\n".join(rows) + "\n"
