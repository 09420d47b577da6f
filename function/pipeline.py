"""Image bytes -> OcrResult, in named steps: decode, detect, recognise, space, lay out, result.

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
from collections.abc import Callable
from dataclasses import dataclass

from . import layout, memory
from .deadline import Deadline
from .engine import Engine, Models
from .errors import OcrError, OutOfMemory
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
        return "\n\n".join(
            "\n".join(self.lines[i].text for i in block.lines) for block in self.blocks
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
            "blocks": [block.to_dict() for block in self.blocks],
            "image": {"width": self.width, "height": self.height, "scale": self.scale},
            "timings_ms": self.timings_ms,
            "memory": self.memory.to_dict(),
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
    try:
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


def _is_allocation_failure(exc: Exception) -> bool:
    message = str(exc).lower()
    return any(
        needle in message
        for needle in ("bad_alloc", "bad allocation", "failed to allocate", "insufficient memory")
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
