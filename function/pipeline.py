"""Image bytes -> OcrResult, in small named steps: decode, recognise, map back, measure.

The result schema is the same for the HTTP function and the Cloud Storage trigger.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from . import memory
from .deadline import Deadline
from .engine import Engine
from .errors import OutOfMemory
from .images import DecodedImage, decode
from .settings import Settings

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    text: str
    score: float
    box: list[Point]  # four corners, clockwise from top-left, in original-image pixels

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "score": self.score, "box": [list(p) for p in self.box]}


@dataclass(frozen=True)
class OcrResult:
    lines: list[Line]
    width: int
    height: int
    scale: float
    timings_ms: dict[str, float]
    memory: memory.MemoryReport

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
            "image": {"width": self.width, "height": self.height, "scale": self.scale},
            "timings_ms": self.timings_ms,
            "memory": self.memory.to_dict(),
        }


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
        lines = _recognise(image, engine, deadline)
    except MemoryError:
        raise OutOfMemory(
            "The instance ran out of memory for this image; it was dropped and the instance "
            "is still serving. Retry later, or send a smaller image."
        ) from None
    finished = time.perf_counter()
    return OcrResult(
        lines=lines,
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


def _recognise(image: DecodedImage, engine: Engine, deadline: Deadline) -> list[Line]:
    try:
        found = engine(image.bgr, deadline)
    except Exception as exc:  # ONNX Runtime and OpenCV report failed allocations their own way
        if _is_allocation_failure(exc):
            raise MemoryError from exc
        raise
    return [
        Line(text=text, score=round(score, 4), box=[image.to_original(x, y) for x, y in box])
        for box, text, score in found
    ]


def _is_allocation_failure(exc: Exception) -> bool:
    message = str(exc).lower()
    return any(
        needle in message
        for needle in ("bad_alloc", "bad allocation", "failed to allocate", "insufficient memory")
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
