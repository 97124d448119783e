"""Printable asset tags: a PNG and an SVG per asset, one PDF sheet per print run.

Each label shows the signed QR code, the asset's type and grade, its name, its short id in
large type (what a person reads out on the phone) and its 16-digit code. The QR is encoded
with segno at error-correction level Q in alphanumeric mode (see ``tags``).

PNG text needs a font with Chinese glyphs: ``labels.font`` in the config, or the first of
the usual system fonts found (Noto CJK, WenQuanYi, Source Han, AR PL). Without one the PNG
shows the type's English name instead of the Chinese name, and says so; the SVG and the
PDF always carry the Chinese text (they leave the glyphs to the viewer).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

from rules.assets.config import LabelConfig
from rules.assets.pdf_sheet import LabelSheet, SheetLabel
from rules.assets.registry import Asset, AssetRegistry
from rules.assets.tags import KeyRing

log = logging.getLogger("gridsense.assets.labels")

QUIET = 4  # modules of white around the code, inside the label
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSansSC-Regular.otf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
_SVG_FONTS = (
    "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, PingFang SC, Microsoft YaHei, sans-serif"
)


def qr_matrix(payload: str) -> list[list[int]]:
    """The QR's modules (1 = dark), without quiet zone; level Q, alphanumeric when possible."""
    code = segno.make(payload, error="q", micro=False, boost_error=False)
    return [list(row) for row in code.matrix]


def code_text(code: str) -> str:
    """``110102 0401 000017``: a component code split as it is built (area, class, serial)."""
    return f"{code[:6]} {code[6:10]} {code[10:]}"


@dataclass(frozen=True)
class LabelText:
    """The words on one label."""

    subtitle: str  # 古树名木（一级）
    title: str  # the asset's name
    title_fallback: str  # when no Chinese font is at hand (PNG only)
    short_id: str
    code: str
    footer: str  # owner / responsible unit

    @classmethod
    def of(cls, asset: Asset, type_zh: str, type_en: str) -> LabelText:
        sub = f"{type_zh}（{asset.grade}）" if asset.grade else type_zh
        return cls(
            subtitle=sub,
            title=asset.name,
            title_fallback=type_en,
            short_id=asset.short_id,
            code=code_text(asset.asset_id),
            footer=asset.owner,
        )


def find_cjk_font(configured: Path | None) -> Path | None:
    """The configured font, or the first usual Chinese system font present."""
    if configured is not None:
        if not configured.is_file():
            raise FileNotFoundError(f"label font {configured} does not exist")
        return configured
    return next((Path(p) for p in CJK_FONTS if Path(p).is_file()), None)


class LabelRenderer:
    """Renders labels of one size; PNG at ``dpi``."""

    def __init__(self, cfg: LabelConfig) -> None:
        self.cfg = cfg
        self.cjk_font = find_cjk_font(cfg.font)
        if self.cjk_font is None:
            log.warning("no Chinese font found: PNG labels show the type's English name (set labels.font)")
        self._fonts: dict[tuple[bool, int], ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def _font(self, cjk: bool, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        key = (cjk, px)
        if key not in self._fonts:
            if cjk and self.cjk_font is not None:
                self._fonts[key] = ImageFont.truetype(str(self.cjk_font), px)
            else:
                self._fonts[key] = ImageFont.load_default(px)
        return self._fonts[key]

    def png(self, matrix: list[list[int]], text: LabelText) -> bytes:
        cfg = self.cfg
        px_mm = cfg.dpi / 25.4
        w, h = round(cfg.width_mm * px_mm), round(cfg.height_mm * px_mm)
        pad = round(1.5 * px_mm)
        n = len(matrix) + 2 * QUIET
        module = max(1, (h - 2 * pad) // n)  # whole pixels per module: crisp edges
        qr = np.pad(np.asarray(matrix, dtype=np.uint8), QUIET)
        qr_img = np.where(np.kron(qr, np.ones((module, module), np.uint8)) > 0, 0, 255).astype(np.uint8)
        img = Image.new("L", (w, h), 255)
        img.paste(Image.fromarray(qr_img, "L"), (pad, (h - qr_img.shape[0]) // 2))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, w - 1, h - 1), outline=180, width=max(1, round(0.2 * px_mm)))
        tx = pad + qr_img.shape[1] + round(1.0 * px_mm)
        tw = w - pad - tx
        have_cjk = self.cjk_font is not None
        title = text.title if have_cjk else text.title_fallback
        subtitle = text.subtitle if have_cjk else ""
        footer = text.footer if have_cjk else ""
        y = pad
        y = self._line(draw, tx, y, tw, subtitle, round(2.6 * px_mm), True)
        y = self._line(draw, tx, y + round(0.6 * px_mm), tw, title, round(4.0 * px_mm), True)
        y = self._line(draw, tx, y + round(1.2 * px_mm), tw, text.short_id, round(3.6 * px_mm), False)
        self._line(draw, tx, y + round(0.5 * px_mm), tw, text.code, round(2.3 * px_mm), False)
        if footer:
            self._line(draw, tx, h - pad - round(2.2 * px_mm), tw, footer, round(2.0 * px_mm), True)
        buf = io.BytesIO()
        img.save(buf, format="PNG", dpi=(cfg.dpi, cfg.dpi), optimize=True)
        return buf.getvalue()

    def _line(self, draw: ImageDraw.ImageDraw, x: int, y: int, width: int, s: str, px: int, cjk: bool) -> int:
        """Draw ``s`` shrunk to fit ``width``; return the y below it."""
        font = self._font(cjk, px)
        while px > 8 and draw.textlength(s, font=font) > width:
            px -= 2
            font = self._font(cjk, px)
        draw.text((x, y), s, fill=0, font=font)
        return y + px

    def svg(self, matrix: list[list[int]], text: LabelText) -> str:
        cfg = self.cfg
        w, h, pad = cfg.width_mm, cfg.height_mm, 1.5
        n = len(matrix) + 2 * QUIET
        module = (h - 2 * pad) / n
        side = module * n
        qx, qy = pad + QUIET * module, (h - side) / 2 + QUIET * module
        path = "".join(
            f"M{c} {r}h{length}v1h-{length}z" for r, row in enumerate(matrix) for c, length in _row_runs(row)
        )
        tx = pad + side + 1.0
        tw = w - pad - tx

        def t(y: float, size: float, s: str, mono: bool = False, weight: str = "normal") -> str:
            family = "DejaVu Sans Mono, Menlo, Consolas, monospace" if mono else _SVG_FONTS
            return (
                f'<text x="{tx:.2f}" y="{y:.2f}" font-size="{size:.2f}" font-family="{family}" '
                f'font-weight="{weight}">{escape(s)}</text>'
            )

        sub_size = min(2.6, tw / max(1, _em(text.subtitle)))
        title_size = min(4.0, tw / max(1, _em(text.title)))
        id_size = min(3.6, tw / (0.62 * max(1, len(text.short_id))))
        code_size = min(2.3, tw / (0.62 * max(1, len(text.code))))
        foot_size = min(2.0, tw / max(1, _em(text.footer)))
        return "\n".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>',
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" '
                f'viewBox="0 0 {w} {h}">',
                f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fff" stroke="#b4b4b4" '
                'stroke-width="0.2"/>',
                f'<path transform="translate({qx:.3f} {qy:.3f}) scale({module:.4f})" '
                f'd="{path}" fill="#000"/>',
                t(pad + sub_size, sub_size, text.subtitle),
                t(pad + sub_size + 0.6 + title_size, title_size, text.title, weight="bold"),
                t(h / 2 + id_size / 2 + 1.5, id_size, text.short_id, mono=True, weight="bold"),
                t(h / 2 + id_size / 2 + 2.0 + code_size, code_size, text.code, mono=True),
                t(h - pad - 0.4, foot_size, text.footer),
                "</svg>",
                "",
            ]
        )


def _em(s: str) -> float:
    return sum(0.55 if ord(c) < 0x80 else 1.0 for c in s)


def _row_runs(row: list[int]) -> list[tuple[int, int]]:
    runs, c, n = [], 0, len(row)
    while c < n:
        if row[c]:
            start = c
            while c < n and row[c]:
                c += 1
            runs.append((start, c - start))
        else:
            c += 1
    return runs


@dataclass
class PrintRun:
    """What a print run wrote."""

    labels: int
    pdf: Path
    png_dir: Path
    svg_dir: Path
    cjk_font: Path | None


def write_print_run(
    registry: AssetRegistry,
    indices: Iterable[int],
    keyring: KeyRing,
    out_dir: Path,
    cfg: LabelConfig,
    run_name: str,
    progress: Callable[[int], None] | None = None,
) -> PrintRun:
    """Sign and render the tags of ``indices``: ``png/<code>.png``, ``svg/<code>.svg``, ``<run>.pdf``."""
    renderer = LabelRenderer(cfg)
    png_dir, svg_dir = out_dir / "png", out_dir / "svg"
    png_dir.mkdir(parents=True, exist_ok=True)
    svg_dir.mkdir(parents=True, exist_ok=True)
    sheet = LabelSheet(cfg.width_mm, cfg.height_mm)
    n = 0
    for i in indices:
        asset = registry.asset(i)
        t = registry.types[asset.type]
        text = LabelText.of(asset, t.name_zh, t.name_en)
        matrix = qr_matrix(keyring.sign(asset.asset_id))
        (png_dir / f"{asset.asset_id}.png").write_bytes(renderer.png(matrix, text))
        (svg_dir / f"{asset.asset_id}.svg").write_text(renderer.svg(matrix, text), encoding="utf-8")
        sheet.add(SheetLabel(matrix, text.title, text.subtitle, text.short_id, text.code, text.footer))
        n += 1
        if progress is not None:
            progress(n)
    pdf = out_dir / f"{run_name}.pdf"
    pdf.write_bytes(sheet.pdf(title=f"gridsense asset tags {run_name}"))
    return PrintRun(n, pdf, png_dir, svg_dir, renderer.cjk_font)
