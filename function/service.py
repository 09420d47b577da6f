"""The per-process service: settings, the cached engine, and the admission gate in front of it.

Admission is the memory guarantee: at most MAX_CONCURRENT_REQUESTS invocations hold an image at
once (the rest get 429 without their body being buffered), only one of them is decoding (a PNG
or GIF is decoded at full size before it is shrunk) and only one is inside the engine. So peak
memory is one decode plus one engine run plus a few compressed uploads and shrunk images,
whatever the traffic.

A count cannot see memory, though: several large images in flight, or a library holding on to
what it allocated, can bring the instance near its limit with fewer requests. So while others
are in flight, a request is also refused (503 `out_of_memory`, before its body is read) when the
instance is within MEMORY_ADMISSION_MARGIN_MB of its limit. With nothing in flight refusing
frees nothing, so that request is admitted; a failed allocation is still a 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import __version__, documents, memory, pipeline, shutdown
from .deadline import Deadline
from .engine import Engine
from .errors import Busy, OutOfMemory, ShuttingDown
from .settings import Settings

RETRY_AFTER_SECONDS = 1


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self._in_flight = 0
        self._counter = threading.Lock()
        self._decoding = threading.Lock()

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold one of MAX_CONCURRENT_REQUESTS slots, or raise without waiting: Busy (429),
        OutOfMemory (503) near the memory limit, ShuttingDown (503) after SIGTERM.

        The first invocation into an idle process resets the memory high-water mark, so each
        response's peak covers its own invocation (and, under concurrency, its neighbours').
        """
        retry_after = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if shutdown.began():
            raise ShuttingDown(
                "The instance is shutting down; retry the request.", headers=retry_after
            )
        with self._counter:
            if self._in_flight >= self.settings.max_concurrent_requests:
                raise Busy(
                    f"{self._in_flight} requests are already in progress "
                    f"(MAX_CONCURRENT_REQUESTS={self.settings.max_concurrent_requests}); "
                    f"retry after {RETRY_AFTER_SECONDS} s.",
                    headers=retry_after,
                )
            if self._in_flight > 0:
                self._check_headroom(retry_after)
            if self._in_flight == 0:
                memory.reset_peak()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._counter:
                self._in_flight -= 1
            if self.settings.enable_gc_after_request:
                memory.release()

    def _check_headroom(self, headers: dict[str, str]) -> None:
        margin = self.settings.memory_admission_margin_mb
        found = memory.headroom_mb() if margin else None
        if found is None or found[0] >= margin:
            return
        left, used, how = found
        raise OutOfMemory(
            f"The instance is within MEMORY_ADMISSION_MARGIN_MB ({margin} MiB) of its memory "
            f"limit ({used:.0f} MiB used, {left:.0f} MiB left, {how}) with "
            f"{self._in_flight} request(s) in progress; this one was refused before any work. "
            f"Retry after {RETRY_AFTER_SECONDS} s.",
            headers=headers,
        )

    def deadline(self) -> Deadline:
        """A new request's deadline: REQUEST_TIMEOUT_SECONDS from now (sooner after SIGTERM)."""
        return Deadline(self.settings.request_timeout_seconds)

    def ocr(
        self,
        data: bytes,
        deadline: Deadline,
        pages: documents.PageRanges | None = None,
        mode: str | None = None,
    ) -> pipeline.OcrResult | pipeline.DocumentResult:
        """OCR bytes already admitted by `admission()`, giving up at `deadline`: an image, or
        the `pages` of a PDF or multi-page TIFF (text layers used as PDF_TEXT_LAYER or `mode`
        says). A single image is page 1 of 1 for `pages`."""
        document = documents.open_document(data)
        if document is None:
            documents.chosen_pages(1, pages, self.settings.max_pages)
            return pipeline.run(data, self.settings, self.engine, self._decoding, deadline=deadline)
        try:
            numbers = documents.chosen_pages(document.count, pages, self.settings.max_pages)
            return self.read_document(document, numbers, deadline, mode=mode)
        finally:
            document.close()

    def read_document(
        self,
        document: documents.Document,
        numbers: list[int],
        deadline: Deadline,
        mode: str | None = None,
        on_page: Callable[[dict[str, object]], None] | None = None,
    ) -> pipeline.DocumentResult:
        """The pages `numbers` of an open document (see `pipeline.run_document`)."""
        return pipeline.run_document(
            document,
            numbers,
            self.settings,
            self.engine,
            self._decoding,
            deadline=deadline,
            mode=mode or self.settings.pdf_text_layer,
            on_page=on_page,
        )

    def info(self) -> dict[str, object]:
        """Service information for GET: a readiness probe and a settings check."""
        self.engine.start_loading()  # where nothing forked, the first probe starts the load
        rss = memory.rss_mb()
        return {
            "service": "serverless-ocr",
            "version": __version__,
            "engine": {
                "name": "rapidocr-onnxruntime",
                "loaded": self.engine.loaded,
                "load_seconds": self.engine.load_seconds,
            },
            "settings": self.settings.public(),
            "memory": {
                "rss_mb": rss,
                "level": memory.level(rss, self.settings),
                "limit_mb": memory.limit_mb(),
            },
            "in_flight": self._in_flight,
        }
