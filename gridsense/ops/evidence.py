"""Snapshot evidence files: which URLs name a file under the evidence folder, and serving them safely.

A case's snapshot URL is a ``file://`` URI or ``<evidence_url_base>/<relative path>``
(``detectors.evidence.EvidenceStore``). Only files that resolve, symlinks followed, to a
place inside ``evidence_dir`` and that are images are ever served.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlparse
from urllib.request import url2pathname

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def evidence_href(url: str | None, evidence_dir: Path | None, url_base: str | None) -> str | None:
    """The page's link (``/evidence/<rel>``) for a snapshot URL, or None if it is not one of ours."""
    if not url or evidence_dir is None:
        return None
    if url.startswith("file:"):
        path = Path(url2pathname(urlparse(url).path))
        try:
            rel = path.resolve().relative_to(evidence_dir.resolve()).as_posix()
        except (ValueError, OSError):
            return None
    elif url_base and url.startswith(url_base.rstrip("/") + "/"):
        rel = unquote(url[len(url_base.rstrip("/")) + 1 :])
    else:
        return None
    return "/evidence/" + quote(rel) if resolve_evidence(evidence_dir, rel) is not None else None


def resolve_evidence(evidence_dir: Path, rel: str) -> Path | None:
    """The file ``rel`` names under ``evidence_dir``, or None if it is outside, missing or no image."""
    if not rel or "\0" in rel or "\\" in rel:
        return None
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or any(p in ("..", "") for p in parts):
        return None
    root = evidence_dir.resolve()
    try:
        path = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    if path.suffix.lower() not in IMAGE_TYPES:
        return None
    return path
