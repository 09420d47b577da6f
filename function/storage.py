"""Cloud Storage: one object generation -> the same OCR as HTTP -> one result object.

Two callers share `process`: the trigger (`handle`, one `finalized` event) and the backfill
(`function.backfill`, objects a bucket already holds, from its listing).

Events arrive at least once and, since triggers filter by bucket only, the function's own result
objects arrive as events too. So, in this order: events for objects under the output prefix are
skipped; a result already written for this source generation (or a newer one) ends the event;
the exact generation named is downloaded into a bounded buffer and OCR'd through the admission
gate; and the result is written with a compare-and-swap on the result object's generation, so a
duplicate delivery never writes twice and a stale one never replaces a newer result.

A document (a PDF or a multi-page TIFF) is read page by page, and each page is checkpointed as
a small object when it is read (`Checkpoints`), so an attempt stopped by its deadline raises for
a retry that resumes after the last page in: no page is lost or read twice, and the result is
written once, from every page, after which the checkpoints are deleted. See docs/documents.md.

What happens next is decided by the error: permanent ones (`OcrError.permanent`: not an image,
too large, a bomb, the object gone, a malformed event) are logged and acknowledged, with an error
result where there is an object to describe; anything else raises, so a deployment with retries
enabled tries again. Every write is a single request: a result object is complete or absent.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from cloudevents.http import CloudEvent
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY

from . import documents
from .deadline import Deadline
from .errors import BadEvent, ObjectGone, OcrError, TooLarge, UnsupportedMediaType
from .images import is_accepted_media_type
from .service import Service

log = logging.getLogger("function.invocation")

FINALIZED = "google.cloud.storage.object.v1.finalized"
SOURCE_GENERATION = "ocr-source-generation"  # custom metadata of every result object
_MAX_NAME_BYTES = 1024  # Cloud Storage's limit on an object name, in UTF-8 bytes

# Each storage call retries transient failures for a few seconds; past that the event fails
# and the platform's own retry (with backoff) takes over.
_RETRY = DEFAULT_RETRY.with_timeout(5.0)
_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Source:
    """The uploaded object an event names: exactly one generation of it."""

    bucket: str
    name: str
    generation: int
    content_type: str
    size: int

    @classmethod
    def from_event(cls, event: CloudEvent) -> Source:
        if event["type"] != FINALIZED:
            raise BadEvent(f"Event type {event['type']!r} is not handled; only {FINALIZED}.")
        data = event.data
        try:
            source = cls(
                bucket=str(data["bucket"]),
                name=str(data["name"]),
                generation=int(data["generation"]),
                content_type=str(data.get("contentType") or ""),
                size=int(data["size"]),
            )
            if source.bucket and source.name:
                return source
        except (KeyError, TypeError, ValueError):
            pass
        raise BadEvent(
            "The event data must be the object's metadata: bucket, name, generation and "
            "size (numbers as strings, as Cloud Storage sends them)."
        )

    @classmethod
    def from_blob(cls, blob: gcs.Blob) -> Source:
        """An object as a bucket listing describes it (the backfill's source of work)."""
        return cls(
            bucket=blob.bucket.name,
            name=blob.name,
            generation=int(blob.generation),
            content_type=blob.content_type or "",
            size=int(blob.size or 0),
        )

    def to_dict(self) -> dict[str, str]:
        """`source` in the result; the generation is a string, as in Cloud Storage's JSON."""
        return {"bucket": self.bucket, "name": self.name, "generation": str(self.generation)}


def handle(event: CloudEvent, service: Service) -> None:
    """Process one event: return when it is done or can never succeed, raise to have it retried."""
    fields: dict[str, object] = {"event_id": event["id"], "event_type": event["type"]}
    with logged(fields):
        fields["outcome"] = process(Source.from_event(event), service, fields)


@contextmanager
def logged(fields: dict[str, object]) -> Iterator[None]:
    """Log one entry for the work in the block, with its outcome; re-raise what is worth a retry.

    A permanent OcrError is the outcome `refused` and is swallowed (retrying cannot help);
    anything else is the outcome `retry` and propagates.
    """
    started = time.perf_counter()
    try:
        yield
    except OcrError as error:
        outcome = "refused" if error.permanent else "retry"
        fields.update(outcome=outcome, error=error.code, reason=error.message)
        if not error.permanent:
            raise
    except Exception as exc:
        fields.update(outcome="retry", error=type(exc).__name__, reason=str(exc))
        raise
    finally:
        _log(fields, started)


def process(
    source: Source,
    service: Service,
    fields: dict[str, object],
    dry_run: bool = False,
    share: Callable[[int], list[int]] | None = None,
) -> str:
    """OCR one object generation into its result object; return the outcome (see docs/storage.md).

    `dry_run` decides exactly as a real run would but stops before downloading: the outcome is
    then `pending` where a real run would read the object.

    `share(page_count)` is the caller's part of a document (a backfill task's pages; the
    default is all of them, as the trigger reads them). With a share, the result is written by
    whichever caller finds every page checkpointed once its own are; the others return
    `pages_written` (their pages are in) or `skipped` (none were theirs: of an image, it is
    page 1 of 1).
    """
    fields.update(
        bucket=source.bucket,
        name=source.name,
        generation=source.generation,
        content_type=source.content_type,
        size=source.size,
    )
    settings = service.settings
    output_bucket = settings.output_bucket or source.bucket
    if output_bucket == source.bucket and source.name.startswith(settings.output_prefix):
        return "skipped"  # our own result (or error result): OCR'ing it would loop forever
    if source.name.endswith("/"):
        return "skipped"  # a folder placeholder, as the console creates: nothing to read
    bucket = client().bucket(output_bucket)
    result_name = f"{settings.output_prefix}{source.name}.json"
    if len(result_name.encode()) > _MAX_NAME_BYTES:  # a write that could never succeed
        raise BadEvent(
            f"The result's name would be {len(result_name.encode())} bytes, over Cloud "
            f"Storage's {_MAX_NAME_BYTES}: shorten the object's name or OUTPUT_PREFIX."
        )
    fields["result"] = f"gs://{output_bucket}/{result_name}"
    existing = bucket.get_blob(result_name, retry=_RETRY, timeout=_TIMEOUT_SECONDS)
    if _covers(existing, source):
        return "duplicate"
    if dry_run:
        return "pending"
    deadline = service.deadline()  # from here: REQUEST_TIMEOUT_SECONDS, or SIGTERM's budget
    checkpoints = Checkpoints(bucket, f"{settings.output_prefix}{source.name}", source)
    try:
        body = _recognise(source, service, fields, deadline, checkpoints, share)
        if body is None:
            return "pages_written" if fields.get("pages_read") else "skipped"
        outcome = "written"
    except OcrError as error:
        if not error.permanent or isinstance(error, ObjectGone):
            raise  # a vanished object gets no result: there is nothing left to describe
        fields.update(error=error.code, reason=error.message)
        body = error.to_dict()
        outcome = "error_written"
    body["source"] = source.to_dict()
    replaces = existing.generation if existing is not None else 0
    written = _write(bucket.blob(result_name), body, source, replaces)
    checkpoints.delete()  # the result holds every page now, whoever wrote it
    return outcome if written else "duplicate"


def _recognise(
    source: Source,
    service: Service,
    fields: dict[str, object],
    deadline: Deadline,
    checkpoints: Checkpoints,
    share: Callable[[int], list[int]] | None,
) -> dict[str, object] | None:
    """Refuse what cannot be an acceptable image or PDF before downloading; OCR the rest.
    None: nothing to write (yet): see `process`."""
    limit = service.settings.max_image_bytes
    if not is_accepted_media_type(source.content_type):
        raise UnsupportedMediaType(
            f"Content type {source.content_type!r} is not an image or a PDF; the object was "
            "not read."
        )
    if source.size > limit:
        raise TooLarge.over(limit)
    with service.admission():
        data = _download(source, limit)
        document = documents.open_document(data)
        if document is not None:
            del data  # the document holds what it needs of it
            try:
                return _read_document(document, service, fields, deadline, checkpoints, share)
            finally:
                document.close()
        if share is not None and not share(1):
            return None  # an image, and another caller's
        result = service.ocr(data, deadline)
        del data
    fields.update(
        lines=len(result.lines),
        width=result.width,
        height=result.height,
        **{f"{step}_ms": ms for step, ms in result.timings_ms.items()},
        peak_rss_mb=result.memory.peak_rss_mb,
        memory_level=result.memory.level,
    )
    return result.to_dict()


def _read_document(
    document: documents.Document,
    service: Service,
    fields: dict[str, object],
    deadline: Deadline,
    checkpoints: Checkpoints,
    share: Callable[[int], list[int]] | None,
) -> dict[str, object] | None:
    """The pages of `share` not checkpointed yet, each checkpointed as it is read; then the
    result, if every page is in by now (else None: another caller's pages are still to come).

    Stopped by the deadline (or SIGTERM, or memory) part-way, raise that transient error: the
    platform retries the event, and the retry starts after the last checkpointed page.
    """
    numbers = documents.chosen_pages(document.count, None, service.settings.max_pages)
    mine = numbers if share is None else share(document.count)
    done = checkpoints.pages()
    todo = [number for number in mine if number not in done]
    result = service.read_document(document, todo, deadline, on_page=checkpoints.save)
    fields.update(
        document=document.kind,
        page_count=document.count,
        pages_resumed=len(done),
        pages_read=len(result.pages),
        pages_not_read=len(result.not_read),
        peak_rss_mb=result.memory.peak_rss_mb,
        memory_level=result.memory.level,
    )
    if result.stopped is not None:
        raise result.stopped
    read = {int(page["page"]): page for page in result.pages}
    if share is not None:
        done = checkpoints.pages()  # others' too: whoever checkpoints last sees them all
    if not set(numbers) <= done | set(read):
        return None
    pages = [*read.values(), *checkpoints.load(set(numbers) - set(read))]
    pages.sort(key=lambda page: int(page["page"]))
    return dataclasses.replace(result, pages=pages).to_dict()


class Checkpoints:
    """A document's pages, one small object each, as they are read: what a retry resumes from.

    `{OUTPUT_PREFIX}{name}.pages/{generation}/{page:06d}.json`, each written once
    (ifGenerationMatch=0: a duplicate delivery's copy of a page is dropped, not written twice),
    and deleted once the result object is written. Under the output prefix, so never OCR'd.
    """

    def __init__(self, bucket: gcs.Bucket, stem: str, source: Source) -> None:
        self._bucket = bucket
        self.used = False  # a document was opened: there may be checkpoints to delete
        self.prefix = f"{stem}.pages/{source.generation}/"
        if len(f"{self.prefix}000000.json".encode()) > _MAX_NAME_BYTES:
            self.prefix = ""  # only a document needs them; `pages` refuses it then

    def _listing(self) -> Iterator[gcs.Blob]:
        if not self.prefix:
            raise BadEvent(
                f"The page checkpoints' names would be over Cloud Storage's {_MAX_NAME_BYTES} "
                "bytes: shorten the document's name or OUTPUT_PREFIX."
            )
        return self._bucket.list_blobs(
            prefix=self.prefix, fields="items(name),nextPageToken", retry=_RETRY, timeout=60
        )

    def pages(self) -> set[int]:
        """The page numbers checkpointed so far (names only: one listing request per 1000)."""
        self.used = True
        return {int(blob.name[len(self.prefix) : -len(".json")]) for blob in self._listing()}

    def load(self, numbers: set[int]) -> list[dict[str, object]]:
        """Those pages' results, read back for the final object."""
        return [
            json.loads(
                self._bucket.blob(self._name(number)).download_as_bytes(
                    retry=_RETRY, timeout=_TIMEOUT_SECONDS
                )
            )
            for number in sorted(numbers)
        ]

    def save(self, page: dict[str, object]) -> None:
        try:
            self._bucket.blob(self._name(int(page["page"]))).upload_from_string(
                json.dumps(page, ensure_ascii=False),
                content_type="application/json; charset=utf-8",
                if_generation_match=0,
                retry=_RETRY,
                timeout=_TIMEOUT_SECONDS,
            )
        except PreconditionFailed:  # a concurrent delivery checkpointed this page first
            log.info("page checkpoint %s was already written", self._name(int(page["page"])))

    def delete(self) -> None:
        """Best effort: a checkpoint left behind is logged, never a reason to retry."""
        if not self.used:
            return
        try:
            for blob in self._listing():
                with suppress(NotFound):  # a concurrent delivery deleted it first
                    blob.delete(retry=_RETRY, timeout=_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("page checkpoints under %s left behind: %s", self.prefix, exc)

    def _name(self, number: int) -> str:
        return f"{self.prefix}{number:06d}.json"


def _download(source: Source, limit: int) -> bytes:
    """Exactly the event's generation, streamed into one buffer that cannot grow past `limit`."""
    blob = client().bucket(source.bucket).blob(source.name, generation=source.generation)
    buffer = _BoundedBuffer(limit)
    try:
        blob.download_to_file(buffer, retry=_RETRY, timeout=_TIMEOUT_SECONDS)
    except NotFound:
        raise ObjectGone(
            f"gs://{source.bucket}/{source.name} generation {source.generation} no longer "
            "exists (deleted or replaced); there is nothing to read."
        ) from None
    return buffer.getvalue()  # BytesIO hands over its own buffer: no second copy


class _BoundedBuffer(io.BytesIO):
    """The event's size is a claim; this is the bound, enforced while the bytes stream in."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, chunk: bytes) -> int:
        if self.tell() + len(chunk) > self._limit:
            raise TooLarge.over(self._limit)
        return super().write(chunk)


def _covers(result: gcs.Blob | None, source: Source) -> bool:
    """Whether a result object already holds this source generation, or a newer one."""
    if result is None:
        return False
    try:
        written_for = int((result.metadata or {}).get(SOURCE_GENERATION, "0"))
    except ValueError:  # someone else's object or metadata: ours replaces it
        return False
    return written_for >= source.generation


def _write(blob: gcs.Blob, body: dict[str, object], source: Source, replaces: int) -> bool:
    """Write the result unless another writer got there first; False if its result covers ours.

    `replaces` is the result object's generation when we looked (0: there was none), so a
    result written since is never overwritten. If that result is older than ours, raise: the
    retried event will see it and replace it.
    """
    blob.metadata = {SOURCE_GENERATION: str(source.generation)}
    try:
        blob.upload_from_string(
            json.dumps(body, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
            if_generation_match=replaces,
            retry=_RETRY,
            timeout=_TIMEOUT_SECONDS,
        )
    except PreconditionFailed:
        current = blob.bucket.get_blob(blob.name, retry=_RETRY, timeout=_TIMEOUT_SECONDS)
        if _covers(current, source):
            return False
        raise
    return True


@functools.cache
def client() -> gcs.Client:
    """One client per process, made on first use (after the fork), reusing its connections.

    With STORAGE_EMULATOR_HOST set, google-cloud-storage talks to that emulator with anonymous
    credentials and needs no project.
    """
    return gcs.Client()


def _log(fields: dict[str, object], started: float) -> None:
    """One entry per object: refusals are WARNING (an upload needs a look), retries ERROR."""
    fields["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    outcome = fields["outcome"]
    memory_level = fields.get("memory_level", "normal")
    if outcome == "retry":
        severity = logging.ERROR
    elif outcome in ("refused", "error_written") or memory_level != "normal":
        severity = logging.WARNING
    else:
        severity = logging.INFO
    where = f"gs://{fields['bucket']}/{fields['name']}" if "bucket" in fields else "(no object)"
    kind = "storage event" if "event_id" in fields else "backfill object"
    log.log(severity, "%s %s: %s", kind, outcome, where, extra={"json_fields": fields})
