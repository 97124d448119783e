"""A vector PDF of label sheets (A4), written directly: no PDF library, no font file.

QR modules are filled rectangles, so they print sharp at any printer resolution. Latin text
uses Helvetica and Chinese text STSong-Light, the two standard fonts every PDF reader
provides (STSong-Light through the Adobe-GB1 character collection, not embedded), so the
sheet shows Chinese names on a print server that has no Chinese font installed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

MM = 72 / 25.4  # points per millimetre
A4_W, A4_H = 210.0, 297.0


@dataclass(frozen=True)
class SheetLabel:
    """What one label shows; ``matrix`` is the QR's module rows, 1 = dark, without quiet zone."""

    matrix: Sequence[Sequence[int]]
    title: str  # Chinese allowed
    subtitle: str  # Chinese allowed
    short_id: str  # ASCII
    code_text: str  # ASCII
    footer: str  # Chinese allowed


def _latin(text: str) -> str:
    safe = text.encode("ascii", "replace").decode()
    return "(" + safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _cjk(text: str) -> str:
    bmp = "".join(c if ord(c) < 0x10000 else "?" for c in text)
    return "<" + bmp.encode("utf-16-be").hex().upper() + ">"


def _cjk_width_em(text: str) -> float:
    return sum(0.5 if ord(c) < 0x80 else 1.0 for c in text)


def _fit_size(text: str, width_pt: float, largest: float) -> float:
    em = _cjk_width_em(text) or 1.0
    return max(4.0, min(largest, width_pt / em))


def _runs(matrix: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules."""
    out = []
    for r, row in enumerate(matrix):
        c, n = 0, len(row)
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                out.append((r, start, c - start))
            else:
                c += 1
    return out


class LabelSheet:
    """Lays labels of ``w`` × ``h`` mm out on A4 pages and writes one PDF."""

    def __init__(self, w_mm: float, h_mm: float, margin_mm: float = 8.0, gap_mm: float = 3.0) -> None:
        self.w, self.h, self.margin, self.gap = w_mm, h_mm, margin_mm, gap_mm
        self.cols = max(1, int((A4_W - 2 * margin_mm + gap_mm) // (w_mm + gap_mm)))
        self.rows = max(1, int((A4_H - 2 * margin_mm + gap_mm) // (h_mm + gap_mm)))
        self.pages: list[list[str]] = []

    @property
    def per_page(self) -> int:
        return self.cols * self.rows

    def add(self, label: SheetLabel) -> None:
        if not self.pages or len(self.pages[-1]) >= self.per_page:
            self.pages.append([])
        slot = len(self.pages[-1])
        col, row = slot % self.cols, slot // self.cols
        x = self.margin + col * (self.w + self.gap)
        y_top = self.margin + row * (self.h + self.gap)
        self.pages[-1].append(self._label_ops(label, x * MM, (A4_H - y_top) * MM))

    def _label_ops(self, label: SheetLabel, x: float, top: float) -> str:
        w, h = self.w * MM, self.h * MM
        ops = [f"q 0.7 G 0.3 w {x:.2f} {top - h:.2f} {w:.2f} {h:.2f} re S Q"]  # cut line
        pad = 1.5 * MM
        n = len(label.matrix)
        side = h - 2 * pad
        module = side / (n + 8)  # 4-module quiet zone each side, inside the label
        qx, qy = x + pad + 4 * module, top - pad - 4 * module
        rects = [
            f"{qx + c * module:.3f} {qy - (r + 1) * module:.3f} {length * module:.3f} {module:.3f} re"
            for r, c, length in _runs(label.matrix)
        ]
        ops.append("0 g " + " ".join(rects) + " f")
        tx = x + pad + side + 1.0 * MM
        tw = x + w - pad - tx
        size_title = _fit_size(label.title, tw, 11.0)
        size_sub = _fit_size(label.subtitle, tw, 7.0)
        size_foot = _fit_size(label.footer, tw, 5.5)
        size_id = min(10.0, tw / (0.6 * max(len(label.short_id), 1)))
        size_code = min(6.5, tw / (0.6 * max(len(label.code_text), 1)))
        lines = [
            ("F2", size_sub, _cjk(label.subtitle), top - pad - size_sub),
            ("F2", size_title, _cjk(label.title), top - pad - size_sub - 2 - size_title),
            ("F1", size_id, _latin(label.short_id), top - h / 2 - size_id / 2 - 2),
            ("F1", size_code, _latin(label.code_text), top - h / 2 - size_id - size_code),
            ("F2", size_foot, _cjk(label.footer), top - h + pad + 1),
        ]
        for font, size, text, y in lines:
            ops.append(f"BT /{font} {size:.2f} Tf {tx:.2f} {y:.2f} Td {text} Tj ET")
        return "\n".join(ops)

    def pdf(self, title: str = "gridsense asset tags") -> bytes:
        """The whole sheet as PDF bytes (an empty run gives one blank page)."""
        pages = self.pages or [[]]
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        catalog = add(b"")  # filled in once the page tree's number is known
        pages_obj = add(b"")
        helv = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        descriptor = add(
            b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880]"
            b" /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>"
        )
        cid = add(
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo"
            b" << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor "
            + f"{descriptor} 0 R".encode()
            + b" /DW 1000 /W [1 95 500] >>"
        )
        song = add(
            b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H"
            b" /DescendantFonts [" + f"{cid} 0 R".encode() + b"] >>"
        )
        kids = []
        for ops in pages:
            data = zlib.compress("\n".join(ops).encode("ascii"))
            content = add(
                f"<< /Length {len(data)} /Filter /FlateDecode >>\nstream\n".encode() + data + b"\nendstream"
            )
            fonts = f"/Font << /F1 {helv} 0 R /F2 {song} 0 R >>"
            page = (
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {A4_W * MM:.2f} {A4_H * MM:.2f}]"
                f" /Resources << {fonts} >> /Contents {content} 0 R >>"
            )
            kids.append(add(page.encode()))
        objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
        kid_refs = " ".join(f"{k} 0 R" for k in kids)
        objects[pages_obj - 1] = f"<< /Type /Pages /Kids [{kid_refs}] /Count {len(kids)} >>".encode()
        info = add(f"<< /Title {_latin(title)} /Producer (gridsense) >>".encode())
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
        out += (
            f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n"
        ).encode()
        return bytes(out)
