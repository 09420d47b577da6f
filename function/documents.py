"""Whole documents: a PDF or a multi-page TIFF -> its pages, one at a time.

A page comes out either as lines read from the PDF's own text layer (born-digital pages: no OCR)
or as one bounded image for the usual steps (detect, recognise, space, lay out). Nothing holds
more than one page: each PDF page, its text page and its bitmap are closed before the next is
opened, and a TIFF frame is decoded only when its turn comes. See docs/documents.md.

PDFium is not thread-safe: "It is not allowed to call pdfium functions simultaneously across
different threads, not even with different documents ... only a single pdfium call can be made at
a time (e.g. via mutex)" (pypdfium2's Python API docs, "Incompatibility with Threading"). This
process serves several requests at once, so every PDFium call here runs under `PDFIUM`, one
process-wide lock, and every PDFium object is closed explicitly under it (pypdfium2 would
otherwise close it from a garbage-collection finaliser, in whatever thread, without the lock).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from io import BytesIO
from typing import Protocol

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from .errors import (
    BadRequest,
    EmptyDocument,
    EncryptedDocument,
    InvalidDocument,
    PagesOutOfRange,
    TooManyPages,
)
from .images import DecodedImage, decode_image
from .settings import Settings

PDFIUM = threading.Lock()  # every PDFium call, process-wide: see the module docstring

Point = tuple[float, float]
POINTS_PER_INCH = 72
# The text-layer judgement (docs/documents.md, "Which pages are OCR'd").
GARBAGE_SHARE = 0.1  # at most this share of a layer's characters may be unreadable
SCAN_SHARE = 0.5  # a page whose images cover this much of it is a scan ...
SCAN_TEXT_SHARE = 0.05  # ... whose layer is used only if its lines cover this much of the page
_UNREADABLE = {"Co", "Cn", "Cs", "Cc"}  # private use, unassigned, lone surrogates, controls
_PAGES = re.compile(r"(\d{1,9})(?:-(\d{1,9})?)?")
_TIFF = (b"II*\x00", b"MM\x00*")
_TEXT_LINE = re.compile(r"\S(?:[^\r\n]*\S)?")  # a line's text, from and to a non-space
# Device units per PDF point when asking PDFium to map page to device coordinates (it answers
# in integers): an eighth of a point is finer than any box needs.
_SUBPOINT = 8


@dataclass(frozen=True)
class Page:
    """One page, ready for the pipeline: an image to OCR, or the lines of its text layer."""

    number: int  # 1-based
    width: float  # in `unit`s: PDF points (1/72 in) or TIFF pixels
    height: float
    image: DecodedImage | None  # to be OCR'd; its width/height are the page's, in `unit`s
    lines: list[tuple[str, list[Point]]] | None  # from the text layer: text and four corners


class PageRanges:
    """`?pages=1-3,7,10-`: page numbers and ranges, 1-based, parsed strictly."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ranges: list[tuple[int, int | None]] = []
        for part in text.split(","):
            match = _PAGES.fullmatch(part.strip())
            if match is None:
                raise BadRequest(
                    f"pages={text!r} is not a page list: use numbers and ranges such as "
                    "1-3,7 or 10- (to the end), pages counted from 1."
                )
            start = int(match[1])
            end = start if "-" not in part else (int(match[2]) if match[2] else None)
            if start < 1 or (end is not None and end < start):
                raise BadRequest(
                    f"pages={text!r}: {part.strip()!r} is not a range of pages from 1."
                )
            self.ranges.append((start, end))

    def numbers(self, count: int) -> list[int]:
        """The pages asked for, in document order, each once; refused if any is past `count`."""
        beyond = [start for start, end in self.ranges if max(start, end or 0) > count]
        if beyond:
            raise PagesOutOfRange(
                f"pages={self.text!r} asks for page {beyond[0]}, but the document has "
                f"{count} page{'s' if count != 1 else ''}."
            )
        chosen: set[int] = set()
        for start, end in self.ranges:
            chosen.update(range(start, (end if end is not None else count) + 1))
        return sorted(chosen)


def is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF")


def chosen_pages(count: int, pages: PageRanges | None, max_pages: int) -> list[int]:
    """The page numbers to read, refused before any work if over MAX_PAGES."""
    numbers = pages.numbers(count) if pages is not None else list(range(1, count + 1))
    if len(numbers) > max_pages:
        raise TooManyPages(
            f"{len(numbers)} pages asked for, over MAX_PAGES ({max_pages}); nothing was read. "
            "Ask for fewer with ?pages=1-50 (say), or deploy with a larger MAX_PAGES."
        )
    return numbers


class Document(Protocol):
    """A PDF or a multi-page TIFF, open; `page()` reads one page, `close()` frees it all."""

    kind: str  # "pdf" or "tiff"
    unit: str  # "pt" or "px"
    count: int

    def page(self, number: int, settings: Settings, mode: str) -> Page: ...

    def close(self) -> None: ...


def open_document(data: bytes) -> Document | None:
    """A Document for a PDF or a TIFF of more than one page; None for any other image."""
    if is_pdf(data):
        return PdfDocument(data)
    if data.startswith(_TIFF):
        try:
            image = Image.open(BytesIO(data), formats=["TIFF"])
            frames = getattr(image, "n_frames", 1)
        except Exception:  # not a readable TIFF: the image path says so in its own words
            return None
        if frames > 1:
            return TiffDocument(image, frames)
        image.close()
    return None


class PdfDocument:
    """A PDF, held as its bytes and, between rendered pages, open in PDFium.

    PDFium keeps what it decoded for a page (its images above all) in caches of the document,
    not of the page: measured, RSS grew ~2 MB per 300-dpi scanned page over a document kept
    open, and stayed flat when the document was reopened after each. So it is closed after
    every rendered page and reopened (from the same bytes: milliseconds) for the next;
    text-layer pages, which cache little, share one opening.
    """

    kind, unit = "pdf", "pt"

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pdf: pdfium.PdfDocument | None = None
        with PDFIUM:
            self.count = len(self._open())
        if self.count == 0:
            self.close()
            raise EmptyDocument("The PDF has no pages.")

    def _open(self) -> pdfium.PdfDocument:
        if self._pdf is None:
            try:
                self._pdf = pdfium.PdfDocument(self._data)
            except pdfium.PdfiumError as exc:
                raise _load_error(exc, self._data) from None
        return self._pdf

    def page(self, number: int, settings: Settings, mode: str) -> Page:
        """Page `number` from its text layer if `mode` and the judgement allow, else rendered."""
        with PDFIUM:
            try:
                page = self._open()[number - 1]
            except pdfium.PdfiumError as exc:
                raise InvalidDocument(f"Page {number} of the PDF cannot be read ({exc}).") from None
            try:
                width, height = page.get_size()
                if mode != "ocr":
                    lines = _text_lines(page, width, height)
                    if mode == "only" or usable_layer(
                        lines, _image_share(page, width, height), width * height
                    ):
                        return Page(number, round(width, 2), round(height, 2), None, lines)
                bgr = _render(page, width, height, settings)
            finally:
                page.close()
            self._close()  # its caches hold this page's decoded images: see the class
        image = DecodedImage(bgr=bgr, width=round(width, 2), height=round(height, 2))
        return Page(number, image.width, image.height, image, None)

    def _close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    def close(self) -> None:
        with PDFIUM:
            self._close()


class TiffDocument:
    kind, unit = "tiff", "px"

    def __init__(self, image: Image.Image, frames: int) -> None:
        self._image = image
        self.count = frames

    def page(self, number: int, settings: Settings, mode: str) -> Page:
        """Frame `number`, decoded as any image is (bomb checks, orientation, shrink)."""
        self._image.seek(number - 1)
        decoded = decode_image(
            self._image,
            max_side=settings.max_side if settings.memory_optimization else None,
            max_pixels=settings.max_pixels,
        )
        return Page(number, decoded.width, decoded.height, decoded, None)

    def close(self) -> None:
        self._image.close()


def render_scale(width: float, height: float, settings: Settings) -> float:
    """Pixels per point: PDF_DPI, but no more than MAX_SIDE on the long side (what the model
    is given anyway, when MEMORY_OPTIMIZATION is on) or MAX_PIXELS in all. Never refused."""
    scale = settings.pdf_dpi / POINTS_PER_INCH
    if settings.memory_optimization:
        scale = min(scale, settings.max_side / max(width, height, 1e-6))
    return min(scale, math.sqrt(settings.max_pixels / max(width * height, 1e-6)))


def _render(page: pdfium.PdfPage, width: float, height: float, settings: Settings) -> np.ndarray:
    scale = render_scale(width, height, settings)
    # PDFium's native 3-byte BGR: the model's own channel order, no conversion.
    bitmap = page.render(scale=scale, may_draw_forms=False)
    try:
        return np.array(bitmap.to_numpy()[..., :3])  # a contiguous copy; the bitmap goes now
    finally:
        bitmap.close()


def _text_lines(page: pdfium.PdfPage, width: float, height: float) -> list[tuple[str, list[Point]]]:
    """The text layer as lines (PDFium's own line breaks), each with its box on the page.

    The page's text comes in one call; a line's box is the union of the font boxes of its first
    and last characters (a box per character would cost ctypes calls per character, ten times
    the whole layer), mapped to the page as displayed: top-left origin, crop box and rotation
    applied, in points.
    """
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range(errors="replace")
        lines = []
        for match in _TEXT_LINE.finditer(text):
            first, last = (
                pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, index)
                for index in (match.start(), match.end() - 1)
            )
            if first < 0 or last < 0:
                continue  # PDFium inserted these characters itself: no box to give
            box = None
            for index in (first, last):
                left, bottom, right, top = textpage.get_charbox(index, loose=True)
                box = _union(box, _to_page(page, width, height, left, bottom, right, top))
            left, top, right, bottom = (round(value, 1) for value in box)
            corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
            lines.append((" ".join(match[0].split()), corners))
        return lines
    finally:
        textpage.close()


def _union(box: list[float] | None, other: list[float]) -> list[float]:
    if box is None:
        return other
    return [
        min(box[0], other[0]),
        min(box[1], other[1]),
        max(box[2], other[2]),
        max(box[3], other[3]),
    ]


def _to_page(page: pdfium.PdfPage, width: float, height: float, *corners: float) -> list[float]:
    """(left, bottom, right, top) in PDF user space -> (left, top, right, bottom) as displayed."""
    size_x, size_y = round(width * _SUBPOINT), round(height * _SUBPOINT)
    xs, ys = [], []
    for x, y in ((corners[0], corners[1]), (corners[2], corners[3])):
        device_x, device_y = pdfium_c.c_int(), pdfium_c.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, size_x, size_y, 0, x, y, device_x, device_y)
        xs.append(min(max(device_x.value / _SUBPOINT, 0.0), width))
        ys.append(min(max(device_y.value / _SUBPOINT, 0.0), height))
    return [min(xs), min(ys), max(xs), max(ys)]


def _image_share(page: pdfium.PdfPage, width: float, height: float) -> float:
    """How much of the page its images cover (overlaps counted twice, capped at 1)."""
    covered = 0.0
    for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = image.get_bounds()
        covered += max(0.0, right - left) * max(0.0, top - bottom)
    return min(1.0, covered / max(width * height, 1e-6))


def usable_layer(
    lines: list[tuple[str, list[Point]]], image_share: float, page_area: float
) -> bool:
    """Whether a text layer is worth more than OCR: docs/documents.md says why these rules.

    - it has text, and at most GARBAGE_SHARE of its characters are unreadable (private use,
      unassigned, controls, U+FFFD: what broken or scrambled font maps extract as);
    - on a scan (images over SCAN_SHARE of the page) its lines must also cover SCAN_TEXT_SHARE
      of the page: a page number or a "scanned by" stamp on a scan is not the page's text.
    """
    characters = [char for text, _ in lines for char in text if not char.isspace()]
    if not characters:
        return False
    unreadable = sum(
        char == "\ufffd" or unicodedata.category(char) in _UNREADABLE for char in characters
    )
    if unreadable > GARBAGE_SHARE * len(characters):
        return False
    if image_share < SCAN_SHARE:
        return True
    text_area = sum((box[2][0] - box[0][0]) * (box[2][1] - box[0][1]) for _, box in lines)
    return text_area >= SCAN_TEXT_SHARE * page_area


def _load_error(exc: pdfium.PdfiumError, data: bytes) -> Exception:
    """PDFium's load failure -> what the client is told.

    PDFium's error code is a global that a failure does not always set, so a stale "password"
    from an earlier document is not believed without an /Encrypt entry in this one.
    """
    if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD and b"/Encrypt" in data:
        return EncryptedDocument(
            "The PDF is encrypted and needs a password to open; send it without a password "
            "(most PDF tools can save an unprotected copy)."
        )
    if re.search(rb"/Count\s+0\b", data) and not re.search(rb"/Count\s+[1-9]", data):
        return EmptyDocument("The PDF has no pages.")  # PDFium refuses such a file outright
    return InvalidDocument(
        f"The body starts like a PDF but cannot be read: it is damaged or truncated ({exc})."
    )
