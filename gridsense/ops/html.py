"""A tiny HTML builder that escapes by default: text is escaped unless it is already ``Safe``.

Every fragment the page shows is built with ``el``; a name from a registry file or a
case description can never become markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


class Safe(str):
    """Markup that is already escaped (built by ``el``, or a trusted constant)."""

    __slots__ = ()


def esc(value: object) -> Safe:
    """``value`` as text, escaped (``Safe`` passes through)."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def _children(children: Iterable[object]) -> str:
    out = []
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str | int | float):
            out.append(esc(child))
        else:
            out.append(_children(child))  # type: ignore[arg-type]
    return "".join(out)


def el(tag: str, *children: object, **attrs: object) -> Safe:
    """``<tag attrs>children</tag>``; ``class_`` → ``class``, ``data_x`` → ``data-x``; None drops an attr."""
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        parts.append(key if value is True else f'{key}="{esc(value)}"')
    open_tag = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Safe(open_tag)
    return Safe(f"{open_tag}{_children(children)}</{tag}>")


def join(items: Iterable[object]) -> Safe:
    """Concatenate children (escaping the plain strings among them)."""
    return Safe(_children(items))


_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "col", "wbr"})
