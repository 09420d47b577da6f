"""The one OCR engine of this process: loaded once, in the process that serves, used serially.

functions-framework imports the function in gunicorn's master process and then forks the worker
that serves. ONNX Runtime's thread pool does not survive a fork (an engine created before the
fork runs markedly slower in the child), so the engine is loaded in a background thread as soon
as the worker is forked; where nothing forks (the Flask debug server) the first readiness probe
or request starts it. Requests that arrive while it loads wait for it.

RapidOCR writes per-call options into shared state, so calls are serialised by a lock; the next
image can be decoded meanwhile (see `Service`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np

from .deadline import Deadline
from .settings import Settings

log = logging.getLogger(__name__)


class Engine:
    """A lazily loaded, lock-guarded RapidOCR instance."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._ocr: Any = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._ocr is not None

    def preload(self) -> None:
        """Start loading in the process that will serve, in the background.

        That is every process forked from this one (gunicorn's worker); where processes cannot
        fork (Windows, where functions-framework serves in-process), this one, at once.
        """
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.start_loading)
        else:
            self.start_loading()

    def start_loading(self) -> None:
        """Load in a background thread, unless it is loaded or loading already."""
        if not self.loaded and not self._loading.locked():
            threading.Thread(target=self._load_or_log, name="ocr-engine-load", daemon=True).start()

    def _load_or_log(self) -> None:
        try:
            self._ensure_loaded()
        except Exception:  # a structured log entry, not a bare thread traceback on stderr
            log.exception("The OCR engine failed to load; the next request will try again")

    def _ensure_loaded(self) -> None:
        with self._loading:
            if self._ocr is not None:
                return
            started = time.perf_counter()
            ocr = _create_rapidocr(self._settings)
            self.load_seconds = round(time.perf_counter() - started, 3)
            self._ocr = ocr  # last: `loaded` reads it
            log.info("OCR engine loaded in %.3f s", self.load_seconds)

    def __call__(
        self, bgr: np.ndarray, deadline: Deadline
    ) -> list[tuple[list[list[float]], str, float]]:
        """OCR one image; returns (box, text, score) per detected line, in reading order.

        A request waiting for the engine gives up at its deadline (504) instead of queueing.
        """
        self._ensure_loaded()
        with deadline.hold(self._lock):
            result, _elapsed = self._ocr(bgr)
        return [(box, text, float(score)) for box, text, score in result or []]


def _create_rapidocr(settings: Settings) -> Any:
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    cv2.setNumThreads(settings.ocr_threads)
    # The angle classifier squeezes each line into 192x48 px: on long document lines it often
    # calls upright text upside down, and the flipped line then reads as nothing. EXIF
    # orientation already handles rotated photos, so it is off unless USE_ANGLE_CLS asks for it.
    common = {
        "use_cls": settings.use_angle_cls,
        "intra_op_num_threads": settings.ocr_threads,
        "inter_op_num_threads": 1,
    }
    if not settings.memory_optimization:
        # The seed's rollback switch: rapidocr's own sizing, including its upscaling of small
        # and thin images (see below), so it is memory-unsafe and only for comparison.
        return RapidOCR(**common)
    # Our decoder has already shrunk the image to MAX_SIDE and never enlarges it; the engine
    # must not either. Its detector's default `limit_type: min` upscales any image whose short
    # side is under 736 px (a 200x60 word then costs ~600 MB); with "max" it only shrinks, to
    # 960/1500/2000 px chosen from the image size (its `limit_side_len` is then ignored), so
    # up to MAX_SIDE=2000 the detector sees our image as is. Its `min_side_len` (30) enlarges
    # thin images proportionally: a 1600x1 strip became 48000x30 and, padded by its letterbox
    # step, a 12000x48000 array (2 GB from a 101-byte PNG); 0 turns that off.
    return RapidOCR(max_side_len=settings.max_side, min_side_len=0, det_limit_type="max", **common)
