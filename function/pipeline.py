"""Image bytes -> OcrResult, in named steps: decode, detect, recognise, space, lay out, result.
A document (documents.py) -> DocumentResult: the same steps page by page, or its text layer.

    decode     images.decode        bytes -> a bounded BGR array (never enlarged)
    detect     detect.find_lines    line quadrilaterals, on strips of bounded size
               detect.single_line   ... or the whole image, when it is one line
    recognise  recognise.crop/read  each line cut out and read alone, right after the cut
    space      spacing.spaced       word spaces from the gaps in the line's pixels
    lay out    layout.arrange       lines -> blocks and columns, in reading order

The result schema is the same for the HTTP function and the Cloud Storage trigger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import layout, memory
from .deadline import Deadline
from .documents import Document
from .engine import Engine, Models
from .errors import OcrError, OutOfMemory, ShuttingDown, Timeout
from .images import DecodedImage, decode
from .settings import Settings

Point = tuple[float, float]
MIN_SCORE = 0.5  # rapidocr's own cut-off: lines read with less confidence are noise


@dataclass(frozen=True)
class Line:
    text: str
    score: float
    box: list[Point]  # four corners, clockwise from top-left, in original-image pixels

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "score": self.score, "box": [list(p) for p in self.box]}


@dataclass(frozen=True)
class Block:
    lines: tuple[int, ...]  # indices into OcrResult.lines, in reading order
    box: list[Point]  # the hull of its lines, in original-image pixels

    def to_dict(self) -> dict[str, object]:
        return {"box": [list(p) for p in self.box], "lines": list(self.lines)}


@dataclass(frozen=True)
class OcrResult:
    lines: list[Line]  # in reading order: block by block
    blocks: list[Block]
    width: int
    height: int
    scale: float
    timings_ms: dict[str, float]
    memory: memory.MemoryReport

    @property
    def text(self) -> str:
        """Lines joined by newlines, blocks separated by a blank line."""
        return _text(self.lines, self.blocks)

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
            "blocks": [block.to_dict() for block in self.blocks],
            "image": {"width": self.width, "height": self.height, "scale": self.scale},
            "timings_ms": self.timings_ms,
            "memory": self.memory.to_dict(),
        }


@dataclass(frozen=True)
class DocumentResult:
    """The pages of a document read so far, as dicts (a storage checkpoint holds the same)."""

    kind: str  # "pdf" or "tiff"
    page_count: int  # pages in the document, read or not
    pages: list[dict[str, object]]  # in page order: `page_dict`
    timings_ms: dict[str, float]
    memory: memory.MemoryReport
    not_read: list[int] = field(default_factory=list)  # asked for, but stopped before them
    stopped: OcrError | None = None  # what stopped them: the deadline, SIGTERM, memory

    @property
    def text(self) -> str:
        """The pages' texts joined by form feeds, as pdftotext and Tesseract do."""
        return "\f".join(str(page["text"]) for page in self.pages)

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "text": self.text,
            "document": {"type": self.kind, "page_count": self.page_count},
            "pages": self.pages,
            "complete": not self.not_read,
            "pages_not_read": self.not_read,
        }
        if self.stopped is not None:
            body["stopped"] = self.stopped.to_dict()["error"]
        body["timings_ms"] = self.timings_ms
        body["memory"] = self.memory.to_dict()
        return body


def run_document(
    document: Document,
    numbers: list[int],
    settings: Settings,
    engine: Engine,
    decoding: threading.Lock,
    *,
    deadline: Deadline,
    mode: str,
    on_page: Callable[[dict[str, object]], None] | None = None,
) -> DocumentResult:
    """Read the pages `numbers` of `document` in order, one at a time.

    The deadline, SIGTERM or a failed allocation stops the document between pages (or inside
    one, which is then not read): the pages read so far are the result, the rest `not_read`.
    If not even the first page was read, that error is raised instead, as for an image.
    `on_page` gets each page as soon as it is read (the storage trigger checkpoints it).
    """
    started = time.perf_counter()
    pages: list[dict[str, object]] = []
    not_read: list[int] = []
    stopped: OcrError | None = None
    for position, number in enumerate(numbers):
        try:
            deadline.check()
            page = read_page(document, number, settings, engine, decoding, deadline, mode)
        except (Timeout, ShuttingDown, OutOfMemory) as error:
            if not pages:
                raise
            stopped, not_read = error, numbers[position:]
            break
        if on_page is not None:
            on_page(page)
        pages.append(page)
    return DocumentResult(
        kind=document.kind,
        page_count=document.count,
        pages=pages,
        timings_ms={"total": _ms(time.perf_counter() - started)},
        memory=memory.report(settings),
        not_read=not_read,
        stopped=stopped,
    )


def read_page(
    document: Document,
    number: int,
    settings: Settings,
    engine: Engine,
    decoding: threading.Lock,
    deadline: Deadline,
    mode: str,
) -> dict[str, object]:
    """One page: from its text layer, or rendered and OCR'd. The engine is taken for this page
    only, so other requests are served between the pages of a long document."""
    started = time.perf_counter()
    with _out_of_memory():
        with deadline.hold(decoding):  # a rendered page is a decoded image: one at a time
            page = document.page(number, settings, mode)
        prepared = time.perf_counter()
        width, height = page.width, page.height
        if page.image is None:
            lines = [Line(text, 1.0, box) for text, box in page.lines or []]
            source, reference, scale = "text_layer", False, None
        else:
            deadline.check()
            with engine.session(deadline) as models:
                lines = read(page.image, models, deadline.check)
            source, reference, scale = "ocr", models.reference is not None, page.image.scale
        del page  # the page's pixels: gone before the next page is rendered
    ordered, blocks = _lay_out(lines, reference=reference)
    finished = time.perf_counter()
    return {
        "page": number,
        "width": width,
        "height": height,
        "unit": document.unit,
        "source": source,
        "text": _text(ordered, blocks),
        "lines": [line.to_dict() for line in ordered],
        "blocks": [block.to_dict() for block in blocks],
        "scale": scale,
        "timings_ms": {
            "prepare": _ms(prepared - started),  # render or decode, or read the text layer
            "ocr": _ms(finished - prepared),
            "total": _ms(finished - started),
        },
        "rss_mb": memory.rss_mb(),  # after the page: flat over a document if nothing leaks
        "peak_rss_mb": memory.peak_rss_mb(),  # the invocation's peak so far (process-wide)
    }


def _never() -> None:
    pass


def run(
    data: bytes,
    settings: Settings,
    engine: Engine,
    decoding: threading.Lock,
    *,
    deadline: Deadline,
) -> OcrResult:
    """OCR one image. Raises OcrError subclasses for anything the client must be told.

    `decoding` is held while decoding: with the engine's own lock, at most one image is being
    decoded and one recognised at any moment, whatever number of requests are admitted. Waiting
    for either gives up at `deadline`, which is checked again before the engine starts.
    """
    started = time.perf_counter()
    with _out_of_memory():
        with deadline.hold(decoding):
            image = decode(
                data,
                max_side=settings.max_side if settings.memory_optimization else None,
                max_pixels=settings.max_pixels,
            )
        decoded = time.perf_counter()
        deadline.check()
        with engine.session(deadline) as models:
            lines = read(image, models, deadline.check)
    ordered, blocks = _lay_out(lines, reference=models.reference is not None)
    finished = time.perf_counter()
    return OcrResult(
        lines=ordered,
        blocks=blocks,
        width=image.width,
        height=image.height,
        scale=image.scale,
        timings_ms={
            "decode": _ms(decoded - started),
            "ocr": _ms(finished - decoded),
            "total": _ms(finished - started),
        },
        memory=memory.report(settings),
    )


def read(image: DecodedImage, models: Models, check: Callable[[], None] = _never) -> list[Line]:
    """Detect, recognise and space every line, top to bottom; boxes in original pixels."""
    # Imported here, where the models are loaded: OpenCV that cannot load (a missing system
    # library) then fails the engine (`engine_failed`), not the import of the function.
    from . import detect, recognise, spacing

    if models.reference is not None:
        found, _elapsed = models.reference(image.bgr)
        return [_line(image, box, text, float(score)) for box, text, score in found or []]
    height, width = image.bgr.shape[:2]
    quads = detect.find_lines(image.bgr, models.detector, check)
    whole = detect.single_line(height, width, quads)
    if whole is not None:
        quads = [whole]
    lines = []
    for quad in quads:
        check()
        crop = recognise.crop(image.bgr, quad)
        if models.classifier is not None:
            (crop,), _angles, _elapsed = models.classifier([crop])
        reading = recognise.read(crop, models.recogniser, models.alphabet)
        text = spacing.spaced(reading, crop)
        if text and reading.score >= MIN_SCORE:
            lines.append(_line(image, quad.tolist(), text, reading.score))
    return lines


def _line(image: DecodedImage, box: list[list[float]], text: str, score: float) -> Line:
    return Line(text=text, score=round(score, 4), box=[image.to_original(x, y) for x, y in box])


def _text(lines: list[Line], blocks: list[Block]) -> str:
    return "\n\n".join("\n".join(lines[i].text for i in block.lines) for block in blocks)


def _lay_out(lines: list[Line], reference: bool) -> tuple[list[Line], list[Block]]:
    """Lines in reading order and the blocks they form (rapidocr's own order for the baseline)."""
    if not lines:
        return [], []
    if reference:
        whole = layout.hull(point for line in lines for point in line.box)
        return lines, [Block(tuple(range(len(lines))), _corners(whole))]
    ordered: list[Line] = []
    blocks = []
    for block in layout.arrange([layout.hull(line.box) for line in lines]):
        start = len(ordered)
        ordered += [lines[i] for i in block.lines]
        blocks.append(Block(tuple(range(start, len(ordered))), _corners(block.box)))
    return ordered, blocks


def _corners(box: layout.Box) -> list[Point]:
    left, top, right, bottom = box
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


@contextmanager
def _out_of_memory() -> Iterator[None]:
    """A failed allocation in the block -> OutOfMemory (503), whoever reported it."""
    try:
        yield
    except OcrError:
        raise
    except MemoryError:
        raise OutOfMemory(
            "The instance ran out of memory for this image; it was dropped and the instance "
            "is still serving. Retry later, or send a smaller image."
        ) from None
    except Exception as exc:  # ONNX Runtime and OpenCV report failed allocations their own way
        if _is_allocation_failure(exc):
            raise OutOfMemory("The instance ran out of memory for this image.") from None
        raise


def _is_allocation_failure(exc: Exception) -> bool:
    message = str(exc).lower()
    return any(
        needle in message
        for needle in ("bad_alloc", "bad allocation", "failed to allocate", "insufficient memory")
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
