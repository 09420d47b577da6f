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
a small object when it is read (`function.checkpoints`), so an attempt stopped by its deadline
raises for a retry that resumes after the last page in: no page is lost or read twice, and the
result is written once, from every page, after which the checkpoints are deleted. See
docs/documents.md.

What happens next is decided by the error: permanent ones (`OcrError.permanent`: not an image,
too large, a bomb, the object gone, a malformed event) are logged and acknowledged, with an error
result where there is an object to describe; anything else raises, so a deployment with retries
enabled tries again. Every write is a single request: a result object is complete or absent.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cloudevents.http import CloudEvent
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage as gcs

from . import documents
from .checkpoints import Checkpoints, read_document
from .deadline import Deadline
from .errors import BadEvent, ObjectGone, OcrError, TooLarge, UnsupportedMediaType
from .gcs_client import MAX_NAME_BYTES, RETRY, TIMEOUT_SECONDS, client
from .images import is_accepted_media_type
from .service import Service

log = logging.getLogger("function.invocation")

FINALIZED = "google.cloud.storage.object.v1.finalized"
SOURCE_GENERATION = "ocr-source-generation"  # custom metadata of every result object


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
    if len(result_name.encode()) > MAX_NAME_BYTES:  # a write that could never succeed
        raise BadEvent(
            f"The result's name would be {len(result_name.encode())} bytes, over Cloud "
            f"Storage's {MAX_NAME_BYTES}: shorten the object's name or OUTPUT_PREFIX."
        )
    fields["result"] = f"gs://{output_bucket}/{result_name}"
    existing = bucket.get_blob(result_name, retry=RETRY, timeout=TIMEOUT_SECONDS)
    if _covers(existing, source):
        return "duplicate"
    if dry_run:
        return "pending"
    deadline = service.deadline()  # from here: REQUESTTIMEOUT_SECONDS, or SIGTERM's budget
    checkpoints = Checkpoints(bucket, f"{settings.output_prefix}{source.name}", source.generation)
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
                return read_document(document, service, fields, deadline, checkpoints, share)
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


def _download(source: Source, limit: int) -> bytes:
    """Exactly the event's generation, streamed into one buffer that cannot grow past `limit`."""
    blob = client().bucket(source.bucket).blob(source.name, generation=source.generation)
    buffer = _BoundedBuffer(limit)
    try:
        blob.download_to_file(buffer, retry=RETRY, timeout=TIMEOUT_SECONDS)
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
            retry=RETRY,
            timeout=TIMEOUT_SECONDS,
        )
    except PreconditionFailed:
        current = blob.bucket.get_blob(blob.name, retry=RETRY, timeout=TIMEOUT_SECONDS)
        if _covers(current, source):
            return False
        raise
    return True


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
