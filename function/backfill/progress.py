"""A backfill task's progress: counts of its share by outcome, rate and ETA, logged as
structured entries at most every PROGRESS_SECONDS (and at the end) and, in a terminal, drawn as
a one-line bar.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

from .task import Task

log = logging.getLogger("function.backfill")

PROGRESS_SECONDS = 10.0  # a structured progress entry at most this often (and at the end)

# Outcomes of `storage.process` (plus `failed`: it raised) and where progress counts them.
DONE = ("written", "error_written", "pages_written")
SKIPPED = ("skipped", "duplicate")


@dataclass
class Progress:
    """Counts of this task's share, with rate and ETA, logged and (in a terminal) drawn."""

    task: Task
    total: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, object]] = field(default_factory=list)
    pages: int = 0
    listing_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    _logged: float = field(default_factory=time.monotonic)

    pages_read: int = 0  # pages this task read: 1 per image, its own pages of a document

    def count(self, outcome: str, pages: int = 0) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.pages_read += pages

    def _sum(self, outcomes: tuple[str, ...]) -> int:
        return sum(self.outcomes.get(outcome, 0) for outcome in outcomes)

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())

    def fields(self) -> dict[str, object]:
        elapsed = time.monotonic() - self.started
        rate = self.handled / elapsed if elapsed > 0 else 0.0
        remaining = max((self.total or 0) - self.handled, 0)
        return {
            "task_index": self.task.index,
            "task_count": self.task.count,
            "task_attempt": self.task.attempt,
            "done": self._sum(DONE),
            "skipped": self._sum(SKIPPED),
            "refused": self.outcomes.get("refused", 0),
            "failed": self.outcomes.get("failed", 0),
            "pending": self.outcomes.get("pending", 0),  # dry run: what a real run would OCR
            "handled": self.handled,
            "total": self.total,
            "outcomes": dict(self.outcomes),
            "elapsed_s": round(elapsed, 1),
            "objects_per_s": round(rate, 3),
            "pages_read": self.pages_read,
            "pages_per_s": round(self.pages_read / elapsed, 3) if elapsed > 0 else 0.0,
            "eta_s": round(remaining / rate, 1) if rate > 0 and self.total is not None else None,
            "list_pages": self.pages,
            "list_ms_per_page": (
                round(self.listing_seconds / self.pages * 1000, 1) if self.pages else None
            ),
        }

    def log(self, message: str, level: int = logging.INFO, force: bool = True, **extra) -> None:
        if not force and time.monotonic() - self._logged < PROGRESS_SECONDS:
            return
        self._logged = time.monotonic()
        log.log(level, message, extra={"json_fields": {**self.fields(), **extra}})

    def bar(self) -> str:
        f = self.fields()
        total = self.total or 0
        width = 30
        filled = width * self.handled // total if total else 0
        eta = f"ETA {f['eta_s']:.0f} s" if f["eta_s"] is not None else ""
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.handled}/{total}  "
            f"done {f['done']} skipped {f['skipped']} failed {f['failed']}  "
            f"{f['objects_per_s']:.2f}/s {eta}"
        )


class Terminal:
    """A one-line progress bar on stdout when it is a terminal; log lines clear it first."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._filter = _ClearLine()

    @classmethod
    def attach(cls, progress: Progress) -> Terminal:
        if not sys.stdout.isatty():
            return cls(None)
        terminal = cls(progress)
        for handler in logging.getLogger().handlers:
            handler.addFilter(terminal._filter)
        return terminal

    def draw(self) -> None:
        if self._progress is not None:
            sys.stdout.write("\r" + self._progress.bar() + "\x1b[K")
            sys.stdout.flush()

    def close(self) -> None:
        if self._progress is not None:
            self.draw()
            sys.stdout.write("\n")
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._filter)
            self._progress = None


class _ClearLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()
        return True
