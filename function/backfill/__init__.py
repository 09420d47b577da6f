"""Backfill: OCR what a bucket already holds, as one task of a Cloud Run job.

    python -m function.backfill BUCKET [--prefix P] [--since TIME] [--limit N] [--dry-run]

Finalize events never come for objects uploaded before the trigger existed. A Cloud Run job runs
this command as N tasks on separate instances, each told CLOUD_RUN_TASK_INDEX and
CLOUD_RUN_TASK_COUNT (and retried per task). Each task lists the bucket page by page, keeps the
objects whose name hashes to its index (a stable split: every object belongs to exactly one task,
the same one on every run) and hands each, one at a time, to `storage.process`: the trigger's own
routine, so the same result object, compare-and-swap and error results. An object whose result
already covers its generation costs one metadata read and no download, so a re-run, or a run
beside the live trigger, writes nothing twice and never replaces a newer result. The
function's own results are not even listed when they share the bucket.

Documents (PDFs and TIFFs, by type or name) are shared by pages, not by object, so one long
document does not keep one task busy while the others finish: every task downloads it and
reads its own runs of PAGES_PER_UNIT pages (`Task.pages`), each page checkpointed as the trigger
does, and the task that finds every page checkpointed once its own are writes the result (the
last to finish always does; two at once are settled by the result's compare-and-swap). A task
stopped part-way is retried and resumes after its last checkpoint. Progress counts the pages
each task read (`pages_read`, `pages_per_s`) beside the objects.

Memory is what one invocation needs: one listing page and one image (or document page) at a
time. The share is listed twice, once to count it (for the ETA; names only, no downloads) and
once to work.

Exit status: 0 every object of the share is done (error results and refusals included);
1 some objects failed in a way a retry can fix (storage errors, out of memory): the job retries
the task, which skips what is done; 2 bad arguments or a bucket that cannot be listed;
130/143 stopped by SIGINT/SIGTERM before the share was done (after finishing the object in hand).

Here: this task's objects from the listing (`share`) and the run loop (`run`). `task.py` is
the task's place in the job and the hash split (`Task`: which objects, which pages of a
document); `progress.py` counts and reports; `__main__.py` is the command line.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from google.api_core.exceptions import Forbidden, NotFound
from google.cloud.storage.retry import DEFAULT_RETRY

from .. import shutdown, storage
from ..errors import Timeout
from ..gcs_client import client
from ..service import Service
from ..settings import Settings
from .progress import Progress, Terminal
from .task import Task

log = logging.getLogger("function.backfill")

PAGE_SIZE = 1000  # objects per listing page: Cloud Storage's maximum
MAX_FAILURES_IN_A_ROW = 10  # storage is down or the instance is broken: let the retry start over
FAILURES_LISTED = 50  # failed objects named in the final entry (the log has each of them)
_LISTED_FIELDS = "items(name,generation,contentType,size,updated),nextPageToken"
_DOCUMENT_TYPES = ("application/pdf", "image/tiff")
_DOCUMENT_SUFFIXES = (".pdf", ".tif", ".tiff")


@dataclass(frozen=True)
class Options:
    bucket: str
    prefix: str = ""
    since: datetime | None = None
    limit: int | None = None
    dry_run: bool = False
    page_size: int = PAGE_SIZE


class Stop:
    """SIGTERM (Cloud Run stops a task with it, then SIGKILLs 10 s later) or SIGINT: finish the
    object in hand (of a document, the page in hand, within shutdown's budget), write nothing
    more, exit."""

    def __init__(self) -> None:
        self.signal: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum: int, frame: object) -> None:
        self.signal = signum
        shutdown.begin()  # a document in hand stops between pages, in time (its pages are in)

    def __bool__(self) -> bool:
        return self.signal is not None


def share(
    options: Options, task: Task, settings: Settings, progress: Progress, stop: Stop
) -> Iterator[storage.Source]:
    """This task's objects, in listing order, one page of the listing in memory at a time: the
    images it owns, and (except in a dry run) every document, of which it reads its pages."""
    for start, end in _ranges(options.bucket, settings):
        listing = client().list_blobs(
            options.bucket,
            prefix=options.prefix or None,
            start_offset=start,
            end_offset=end,
            page_size=options.page_size,
            fields=_LISTED_FIELDS,
            retry=DEFAULT_RETRY,
            timeout=60,
        )
        pages = iter(listing.pages)
        while not stop:
            started = time.monotonic()
            page = next(pages, None)
            progress.listing_seconds += time.monotonic() - started
            if page is None:
                break
            progress.pages += 1
            for blob in page:
                if options.since is not None and (
                    blob.updated is None or blob.updated < options.since
                ):
                    continue
                source = storage.Source.from_blob(blob)
                if task.owns(blob.name) or (not options.dry_run and is_document(source)):
                    yield source


def is_document(source: storage.Source) -> bool:
    """What may have pages to share (by its type or name; the bytes decide: a TIFF of one
    frame is an image, read by the task that owns it)."""
    return source.content_type.split(";")[0].strip().lower() in _DOCUMENT_TYPES or (
        source.name.lower().endswith(_DOCUMENT_SUFFIXES)
    )


def _ranges(bucket: str, settings: Settings) -> list[tuple[str | None, str | None]]:
    """Name ranges to list: all of them, except our own results when they share the bucket.

    Results would be skipped anyway (`storage.process`), but listing them could double the
    listing. OUTPUT_PREFIX ends with "/", so its successor replaces that with "0".
    """
    if (settings.output_bucket or bucket) != bucket:
        return [(None, None)]
    results = settings.output_prefix
    return [(None, results), (results[:-1] + chr(ord(results[-1]) + 1), None)]


def run(options: Options, task: Task, service: Service, stop: Stop) -> int:
    """Count this task's share, then process it; the exit status (see the module docstring)."""
    counting = Progress(task)
    try:
        total = 0
        for _ in share(options, task, service.settings, counting, stop):
            total += 1
            if options.limit is not None and total >= options.limit:
                break
    except (NotFound, Forbidden) as exc:
        log.error(
            "cannot list gs://%s: %s",
            options.bucket,
            exc,
            extra={"json_fields": {"bucket": options.bucket, "error": type(exc).__name__}},
        )
        return 2
    if stop:
        return _stopped(counting, stop)
    progress = Progress(task, total=total)
    progress.log(
        f"backfill task {task.index}/{task.count}: {total} objects of gs://{options.bucket}/"
        f"{options.prefix} to {'check (dry run)' if options.dry_run else 'process'}",
        bucket=options.bucket,
        prefix=options.prefix,
        since=options.since.isoformat() if options.since else None,
        dry_run=options.dry_run,
        count_seconds=round(time.monotonic() - counting.started, 1),
        list_ms_per_page=counting.fields()["list_ms_per_page"],
    )
    terminal = Terminal.attach(progress)
    in_a_row = 0
    for source in share(options, task, service.settings, progress, stop):
        if options.limit is not None and progress.handled >= options.limit:
            break
        outcome, pages = _one(source, service, task, options.dry_run, progress, stop)
        progress.count(outcome, pages)
        in_a_row = in_a_row + 1 if outcome == "failed" else 0
        terminal.draw()
        progress.log("backfill progress", force=False)
        if in_a_row >= MAX_FAILURES_IN_A_ROW:
            terminal.close()
            progress.log(
                f"backfill task {task.index}: {in_a_row} failures in a row; giving up so the "
                "job retries the task",
                level=logging.ERROR,
                failed_objects=progress.failures,
            )
            return 1
        if stop:
            break
    terminal.close()
    if stop and progress.handled < total:  # a stop after the last object changes nothing
        return _stopped(progress, stop)
    failed = progress.outcomes.get("failed", 0)
    progress.log(
        f"backfill task {task.index}/{task.count} finished: "
        + ("every object done" if not failed else f"{failed} failed; exit 1 to be retried"),
        level=logging.ERROR if failed else logging.INFO,
        failed_objects=progress.failures,
    )
    return 1 if failed else 0


def _one(
    source: storage.Source,
    service: Service,
    task: Task,
    dry_run: bool,
    progress: Progress,
    stop: Stop,
) -> tuple[str, int]:
    """One object through the trigger's routine (this task's pages of it); its outcome,
    `failed` if it raised, and the pages this task read of it.

    REQUEST_TIMEOUT_SECONDS stops a document's pages as it stops a trigger's attempt; a task
    has no caller waiting, so it goes on at once from its checkpoints while pages come in.
    """
    pages = 0
    while True:
        fields: dict[str, object] = {"task_index": task.index, "task_attempt": task.attempt}
        try:
            with storage.logged(fields):
                fields["outcome"] = storage.process(
                    source,
                    service,
                    fields,
                    dry_run=dry_run,
                    share=lambda count: task.pages(source.name, count),
                )
        except Timeout:
            pages += int(str(fields.get("pages_read", 0)))
            if fields.get("pages_read") and not stop:
                continue  # logged as `retry`; the next round starts after the last page in
            return _failed(source, fields, progress), pages
        except Exception:  # logged with its reason by `storage.logged`; the retry will redo it
            return _failed(source, fields, progress), pages + int(str(fields.get("pages_read", 0)))
        outcome = str(fields["outcome"])
        image = 1 if outcome in ("written", "error_written") else 0
        return outcome, pages + int(str(fields.get("pages_read", image)))


def _failed(source: storage.Source, fields: dict[str, object], progress: Progress) -> str:
    if len(progress.failures) < FAILURES_LISTED:
        progress.failures.append(
            {"name": source.name, "error": fields.get("error"), "reason": fields.get("reason")}
        )
    return "failed"


def _stopped(progress: Progress, stop: Stop) -> int:
    name = signal.Signals(stop.signal).name
    progress.log(
        f"backfill task {progress.task.index} stopped by {name}; the object in hand was "
        "finished, nothing more was written",
        level=logging.WARNING,
    )
    return 128 + int(stop.signal)
