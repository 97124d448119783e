"""Printed tags: each PNG reads back to the signed payload, each SVG carries the same QR
modules and the words, and the PDF sheet is a well-formed document with every label."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from gridsense.model.registry import GridRegistry
from rules.assets import labels
from rules.assets.config import LabelConfig
from rules.assets.labels import LabelRenderer, LabelText, qr_matrix, write_print_run
from rules.assets.pdf_sheet import LabelSheet, SheetLabel
from rules.assets.ping_codec import PhotoQrReader
from rules.assets.registry import AssetRegistry
from rules.assets.tags import KeyRing
from tests.assets.harness import TEST_KEYS, asset_config


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory, grids: GridRegistry) -> tuple[Path, AssetRegistry]:
    cfg = asset_config()
    reg = AssetRegistry.load(cfg.registry, cfg.types, grids)
    out = tmp_path_factory.mktemp("tags")
    done: list[int] = []
    run = write_print_run(reg, range(len(reg)), KeyRing(TEST_KEYS), out, cfg.labels, "run-1", done.append)
    assert run.labels == len(reg) == done[-1] and run.pdf == out / "run-1.pdf"
    return out, reg


def test_every_png_reads_back_to_its_signed_payload(printed: tuple[Path, AssetRegistry]) -> None:
    out, reg = printed
    ring = KeyRing(TEST_KEYS)
    reader = PhotoQrReader(max_pixels=10**7)  # what reads photos in production
    for asset in reg:
        img = cv2.imread(str(out / "png" / f"{asset.asset_id}.png"), cv2.IMREAD_GRAYSCALE)
        assert img.shape == (354, 709)  # 60 × 30 mm at 300 dpi
        text = reader.read(cv2.imencode(".jpg", img)[1].tobytes())
        assert text == ring.sign(asset.asset_id)
        assert ring.verify(text).asset_id == asset.asset_id


def _svg_matrix(svg: str) -> list[list[int]]:
    root = ET.fromstring(svg.encode())
    path = next(el for el in root if el.tag.endswith("path"))
    runs = [tuple(map(int, m)) for m in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path.attrib["d"])]
    n = max(r for _, r, _ in runs) + 1
    matrix = [[0] * n for _ in range(n)]
    for c, r, length in runs:
        for k in range(length):
            matrix[r][c + k] = 1
    return matrix


def test_every_svg_has_the_same_qr_and_the_words(printed: tuple[Path, AssetRegistry]) -> None:
    out, reg = printed
    ring = KeyRing(TEST_KEYS)
    for asset in reg:
        svg = (out / "svg" / f"{asset.asset_id}.svg").read_text(encoding="utf-8")
        assert _svg_matrix(svg) == qr_matrix(ring.sign(asset.asset_id))
        texts = [el.text for el in ET.fromstring(svg.encode()) if el.tag.endswith("text")]
        assert asset.name in texts and asset.short_id in texts
        assert f"{asset.asset_id[:6]} {asset.asset_id[6:10]} {asset.asset_id[10:]}" in texts


def test_the_pdf_sheet_is_well_formed_and_holds_every_label(printed: tuple[Path, AssetRegistry]) -> None:
    out, reg = printed
    pdf = (out / "run-1.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n ", pdf)]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    streams = [zlib.decompress(m) for m in re.findall(rb"stream\n(.*?)\nendstream", pdf, re.S)]
    content = b"\n".join(streams).decode("ascii")
    per_page = LabelSheet(60, 30).per_page
    assert len(streams) == -(-len(reg) // per_page)
    assert content.count(" re S Q") == len(reg)  # one cut line per label
    for asset in reg:
        assert asset.name.encode("utf-16-be").hex().upper() in content
        assert f"({asset.short_id})" in content
    assert b"/BaseFont /STSong-Light" in pdf and b"/Encoding /UniGB-UCS2-H" in pdf


def test_a_sheet_spills_onto_new_pages() -> None:
    sheet = LabelSheet(60, 30)
    label = SheetLabel(
        qr_matrix("GS1:1101020401000001:K2:AAAAAAAAAAAAAAAA"), "名", "类", "02-0401-1", "x", "单位"
    )
    for _ in range(sheet.per_page + 1):
        sheet.add(label)
    assert len(sheet.pages) == 2 and b"/Count 2" in sheet.pdf()


def test_png_without_a_chinese_font_still_prints_a_readable_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labels, "CJK_FONTS", ("/nonexistent/font.ttc",))
    renderer = LabelRenderer(LabelConfig())
    assert renderer.cjk_font is None
    payload = "GS1:1101020401000001:K2:AAAAAAAAAAAAAAAA"
    text = LabelText(
        "古树名木", "银锭桥古槐", "ancient tree", "02-0401-000001", "110102 0401 000001", "园林局"
    )
    png = renderer.png(qr_matrix(payload), text)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert PhotoQrReader(10**7).read(cv2.imencode(".jpg", img)[1].tobytes()) == payload


def test_a_configured_font_must_exist() -> None:
    with pytest.raises(FileNotFoundError):
        LabelRenderer(LabelConfig(font=Path("/nonexistent/font.otf")))
