"""The operations page in a real browser against a real pipeline.

Mosquitto → App → the reference platform, a simulated storm, the ops app on a socket,
and Debian's Chromium through Playwright: a case appears live, clicking its grid shows
it, hostile names stay text, a wrong id gets a 404 page. A camera-fault case with a
snapshot is queued through the outbox as the camera stage queues one, for its thumbnail.
The screenshot goes to ``test-artifacts/ops-page.png``; ``docs/ops-page.png`` (for the
README) is written when missing or with ``GRIDSENSE_UPDATE_SCREENSHOT=1``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridsense.app import App
from gridsense.embedded_broker import MosquittoBroker
from gridsense.ops.app import create_ops_app
from gridsense.ops.config import OpsConfig
from gridsense.ops.server import OpsServer
from gridsense.ops.source import AppSource
from simulators.platform import PlatformConfig, PlatformServer, WorkflowConfig
from tests.ops.browser import chromium_page, require_browser
from tests.ops.pipeline import (
    DEVICE_SCRIPT,
    HOSTILE_DEVICE,
    RULE_SCRIPT,
    filed_cases,
    publish_storm,
    queue_camera_case,
    running_pipeline,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "ops-page.png"
DOCS_COPY = ROOT / "docs" / "ops-page.png"


@pytest.fixture
def slow_platform() -> Iterator[PlatformServer]:
    """Cases move through the workflow in seconds, as a person would move them, not instantly."""
    server = PlatformServer(PlatformConfig(workflow=WorkflowConfig(step_delay_s=(4.0, 8.0), seed=5)))
    server.start()
    yield server
    server.stop()


def test_case_appears_live_and_clicking_its_grid_shows_it(
    mosquitto: MosquittoBroker, slow_platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    require_browser()
    with running_pipeline(mosquitto, slow_platform, topic_root, tmp_path) as app:
        evidence = tmp_path / "evidence"
        cfg = OpsConfig(poll_s=0.2, evidence_dir=evidence)
        ops = OpsServer(create_ops_app(AppSource(app, cfg), cfg)).start()
        try:
            with chromium_page() as page:
                page.goto(ops.url + "/")
                page.wait_for_selector("body[data-ready='1']")
                assert page.locator("li.case").count() == 0, "a fresh store has no cases"

                # The storm arrives while the page is open: the case must come in live (SSE).
                publish_storm(app, mosquitto)
                camera_case = queue_camera_case(app, evidence)
                wait_for(lambda: filed_cases(app.cfg.store.path), what="a case filed on the platform")
                page.wait_for_selector("#cases li.case", timeout=30_000)
                key, grid = _first_grid_case(page)
                # A selector, not wait_for_function: its polled predicate is a string the
                # page's CSP (no 'unsafe-eval') refuses to evaluate whenever it must poll.
                page.wait_for_selector(f"#g{grid}.oc", state="attached", timeout=15_000)

                page.click(f"#g{grid}")
                detail = page.locator(f"#detail .grid-detail[data-grid='{grid}']")
                detail.wait_for(timeout=10_000)
                assert detail.locator(f"li.case[data-case='{key}']").count() == 1
                assert page.url.endswith(f"/grid/{grid}")

                # Names from files are text, never markup.
                page.click(f"#g{_grid_of(HOSTILE_DEVICE)}")
                page.locator(f"#detail .grid-detail[data-grid='{_grid_of(HOSTILE_DEVICE)}']").wait_for()
                names = page.locator("#detail .dev-name").all_inner_texts()
                assert any(DEVICE_SCRIPT in n for n in names), names
                page.locator("#detail li.case[data-case] .case-title").first.click()
                page.locator("#detail .case-detail").wait_for()
                assert RULE_SCRIPT in page.inner_text("#detail .case-detail .desc")
                assert page.evaluate("window.__pwned === undefined"), "a script from a name ran"

                # The camera case shows its snapshot, served from the evidence folder.
                thumb = page.locator(f"#cases li.case[data-case='{camera_case}'] img.thumb")
                thumb.wait_for(timeout=15_000)
                assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", thumb.element_handle())

                # Let the platform walk the cases a step or two, then photograph the wall.
                _settle(app, page)
                page.click(f"#g{grid}")
                detail.wait_for()
                page.mouse.move(1900, 1070)
                page.wait_for_timeout(800)
                ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACT))
                # The README's copy is refreshed on request only: a test run must not dirty the tree.
                if not DOCS_COPY.exists() or os.environ.get("GRIDSENSE_UPDATE_SCREENSHOT") == "1":
                    DOCS_COPY.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ARTIFACT, DOCS_COPY)

                # A wrong id in a page URL is a 404 page, not a stack trace.
                for url in ("/grid/110102999999999", "/case/gs-nope", "/grid/<script>x"):
                    resp = page.goto(ops.url + url)
                    assert resp is not None and resp.status == 404, url
                    text = page.inner_text("body")
                    assert "404" in text and "Traceback" not in text
                assert page.evaluate("window.__pwned === undefined")
        finally:
            ops.stop()


def _first_grid_case(page: Any) -> tuple[str, str]:
    """(case key, grid) of the first case in the list filed for one grid (not a summary)."""
    item = page.locator("#cases li.case:not(.summary)").first
    item.wait_for()
    return item.get_attribute("data-case"), item.get_attribute("data-grid")


def _grid_of(device_id: str) -> str:
    # Demo device ids carry street + community + serial of their grid: rg-012001001-1 → 110102012001001.
    return "110102" + device_id.split("-")[1]


def _settle(app: App, page: Any) -> None:
    c = app.gateway.counters
    wait_for(lambda: c["readings"] + c["duplicates"] + c["dead_letters"] >= 2000, what="storm handled")
    wait_for(lambda: app.delivery.depth() == 0, what="outbox drained")
    store = app.cfg.store.path
    wait_for(lambda: _statuses(store) - {"queued", "filed", "立案"}, what="a case dispatched on the platform")
    page.wait_for_selector("#cases .st-work", timeout=15_000)  # and the page shows it, live


def _statuses(store: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return {s for (s,) in conn.execute("SELECT DISTINCT status FROM cases")}
    finally:
        conn.close()
