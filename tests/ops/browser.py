"""Debian's Chromium driven by Playwright. Missing either is a test failure with the fix, never a skip."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: The flags that work on these machines (no GPU, no sandbox as root, a closed network).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> Any:
    """The ``playwright.sync_api`` module, after checking Chromium is there."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail(
            "the browser tests need the Playwright Python package: pip install playwright "
            "(do NOT run `playwright install`: the tests drive Debian's chromium)"
        )
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    return sync_api


@contextmanager
def chromium_page(width: int = 1920, height: int = 1080) -> Iterator[Any]:
    """A page in a fresh Chromium profile (an empty --user-data-dir), closed afterwards."""
    sync_api = require_browser()
    profile = tempfile.mkdtemp(prefix="gridsense-chromium-")
    try:
        with sync_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": width, "height": height},
                timezone_id="Asia/Shanghai",
                locale="zh-CN",
            )
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
