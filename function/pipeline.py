"""Image bytes -> OcrResult, in named steps: decode, orient, detect, recognise, space, lay out.
A document (documents.py) -> DocumentResult: the same steps page by page, or its text layer.

    decode     images.decode        bytes -> a bounded BGR array (never enlarged)
    orient     orientation.upright  the page turned upright (0/90/180/270), boxes mapped back
    detect     detect.find_lines    line quadrilaterals, on strips of bounded size
               detect.single_line   ... or the whole image, when it is one line
    recognise  recognise.crop/read  each line cut out and read alone, right after the cut
    space      spacing.spaced       word spaces from the gaps in the line's pixels
    lay out    layout.find/arrange  the page's rules; lines -> blocks in reading order, each
                                    read row by row, a row's cells split by tabs in the text

The result schema is the same for the HTTP function and the Cloud Storage trigger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import layout, memory
from .deadline import Deadline
from .documents import Document
from .engine import Engine, Models
from .errors import OcrError, OutOfMemory, ShuttingDown, Timeout
from .images import DecodedImage, decode
from .settings import Settings

if TYPE_CHECKING:
    from .detect import Quad
    from .orientation import Turn
    from .recognise import Reading

Point = tuple[float, float]
MIN_SCORE = 0.5  # rapidocr's own cut-off: lines read with less confidence are noise


@dataclass(frozen=True)
class Line:
    text: str
    score: float
    # Four corners, clockwise from the text's top-left (on a turned page, wherever that lands),
    # in original-image pixels.
    box: list[Point]

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "score": self.score, "box": [list(p) for p in self.box]}


@dataclass(frozen=True)
class Block:
    lines: tuple[int, ...]  # indices into OcrResult.lines, in reading order
    box: list[Point]  # the hull of its lines, in original-image pixels
    kind: str = "text"  # "text" or "table"
    rows: tuple[layout.Row, ...] = ()  # top to bottom, each its cells left to right (indices)

    def to_dict(self) -> dict[str, object]:
        rows = [[list(cell) for cell in row] for row in self.rows]
        box = [list(p) for p in self.box]
        return {"kind": self.kind, "box": box, "lines": list(self.lines), "rows": rows}

    def text(self, lines: list[Line]) -> str:
        """A row per line of text, cells separated by a tab, a wrapped cell's lines by a space."""
        return "\n".join(
            "\t".join(" ".join(lines[i].text for i in cell) for cell in row) for row in self.rows
        )


@dataclass(frozen=True)
class OcrResult:
    lines: list[Line]  # in reading order: block by block
    blocks: list[Block]
    width: int
    height: int
    scale: float
    timings_ms: dict[str, float]
    memory: memory.MemoryReport
    rotation: int = 0  # degrees clockwise the image as sent was turned to read it upright

    @property
    def text(self) -> str:
        """Block by block, separated by a blank line; each block row by row (`Block.text`)."""
        return _text(self.lines, self.blocks)

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
            "blocks": [block.to_dict() for block in self.blocks],
            "rotation": self.rotation,
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
        width, height, image, layer = page.width, page.height, page.image, page.lines
        del page  # `image` alone holds the page's pixels: turning it drops the copy as rendered
        if image is None:
            # A text layer is read from the page's content, whichever way its text runs: not
            # turned (its boxes are on the page as displayed, its /Rotate applied, as rendered).
            lines = [Line(text, 1.0, box) for text, box in layer or []]
            source, rules, scale, turn = "text_layer", layout.NONE, None, None
        else:
            from .orientation import upright  # imports OpenCV: see read()

            scale = image.scale
            deadline.check()
            with engine.session(deadline) as models:
                image, turn, quads, known = upright(image, models, deadline.check)
                lines = read(image, models, deadline.check, quads, known)
            source, rules = "ocr", _rules(image, models)  # on the page turned upright
            del image  # the page's pixels: gone before the next page is rendered
            # Hand the page's freed buffers back now, not after the request: over a long
            # document glibc's heaps otherwise fragment, and RSS climbed ~1.5 MB a page after
            # page 65 of bench.documents' 100-page scan. A few ms against a page's seconds of OCR.
            memory.release()
    ordered, blocks = _turned_back(*lay_out(lines, rules), turn)
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
        "rotation": turn.degrees if turn is not None else 0,
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
        width, height, scale = image.width, image.height, image.scale
        with engine.session(deadline) as models:
            from .orientation import upright  # imports OpenCV: see read()

            # Rebinding `image`: the copy as sent is dropped once the turned one is made.
            image, turn, quads, known = upright(image, models, deadline.check)
            lines = read(image, models, deadline.check, quads, known)
        read_at = time.perf_counter()
        rules = _rules(image, models)  # on the page turned upright, as its lines
    ordered, blocks = _turned_back(*lay_out(lines, rules), turn)
    finished = time.perf_counter()
    return OcrResult(
        lines=ordered,
        blocks=blocks,
        width=width,
        height=height,
        scale=scale,
        timings_ms={
            "decode": _ms(decoded - started),
            "ocr": _ms(finished - decoded),
            "layout": _ms(finished - read_at),  # part of "ocr"
            "total": _ms(finished - started),
        },
        memory=memory.report(settings),
        rotation=turn.degrees,
    )


def read(
    image: DecodedImage,
    models: Models,
    check: Callable[[], None] = _never,
    quads: list[Quad] | None = None,
    known: Reading | None = None,
) -> list[Line]:
    """Detect (unless `quads` were found already), recognise and space every line, top to
    bottom; boxes in original pixels. `known`: the reading of the image as one line
    (`detect.single_line` of `quads`), if orienting it read it already."""
    # Imported here, where the models are loaded: OpenCV that cannot load (a missing system
    # library) then fails the engine (`engine_failed`), not the import of the function.
    from . import detect, recognise, spacing

    if models.reference is not None:
        found, _elapsed = models.reference(image.bgr)
        return [_line(image, box, text, float(score)) for box, text, score in found or []]
    height, width = image.bgr.shape[:2]
    if quads is None:
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
        if known is None:
            reading = recognise.read(crop, models.recogniser, models.alphabet)
        else:  # the one line, read to orient it
            reading = known
        text = spacing.spaced(reading, crop)
        if text and reading.score >= MIN_SCORE:
            lines.append(_line(image, quad.tolist(), text, reading.score))
    return lines


def _line(image: DecodedImage, box: list[list[float]], text: str, score: float) -> Line:
    return Line(text=text, score=round(score, 4), box=[image.to_original(x, y) for x, y in box])


def _rules(image: DecodedImage, models: Models) -> layout.Rules | None:
    """The page's rules, looked for in the bounded image the engine read (no second copy);
    None for rapidocr's own order (the baseline)."""
    return None if models.reference is not None else layout.find(image.bgr, image.to_original)


def _text(lines: list[Line], blocks: list[Block]) -> str:
    return "\n\n".join(block.text(lines) for block in blocks)


def lay_out(lines: list[Line], rules: layout.Rules | None) -> tuple[list[Line], list[Block]]:
    """Lines in reading order and the blocks they form; rules None: rapidocr's own order, one
    line per row (the baseline)."""
    if not lines:
        return [], []
    if rules is None:
        whole = layout.hull(point for line in lines for point in line.box)
        rows = tuple(((i,),) for i in range(len(lines)))
        return lines, [Block(tuple(range(len(lines))), _corners(whole), rows=rows)]
    ordered: list[Line] = []
    blocks = []
    for block in layout.arrange([layout.hull(line.box) for line in lines], rules):
        start = len(ordered)
        ordered += [lines[i] for i in block.lines]
        new = {old: start + k for k, old in enumerate(block.lines)}
        rows = tuple(tuple(tuple(new[i] for i in cell) for cell in row) for row in block.rows)
        indices = tuple(range(start, len(ordered)))
        blocks.append(Block(indices, _corners(block.box), kind=block.kind, rows=rows))
    return ordered, blocks


def _turned_back(
    lines: list[Line], blocks: list[Block], turn: Turn | None
) -> tuple[list[Line], list[Block]]:
    """Lines and blocks laid out on the page turned upright, their boxes on the page as sent."""
    if turn is None or not turn.degrees:
        return lines, blocks
    lines = [replace(line, box=[turn.back(*p) for p in line.box]) for line in lines]
    blocks = [replace(block, box=[turn.back(*p) for p in block.box]) for block in blocks]
    return lines, blocks


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
