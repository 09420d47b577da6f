"""A document's page checkpoints: what a stopped attempt resumes from.

A document (a PDF or a multi-page TIFF) is read page by page, and each page is saved as a small
object of its own when it is read, keyed by the source's generation (`Checkpoints`). An attempt
stopped by its deadline raises for a retry, which reads only the pages not in yet
(`read_document`); the result is built from every page once all are in, by whichever caller
(the trigger, or one of several backfill tasks sharing the pages) finds them so, and
`function.storage` writes it and deletes the checkpoints. See docs/documents.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import suppress

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage as gcs

from . import documents
from .deadline import Deadline
from .errors import BadEvent
from .gcs_client import MAX_NAME_BYTES, RETRY, TIMEOUT_SECONDS
from .service import Service

log = logging.getLogger("function.invocation")


def read_document(
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

    def __init__(self, bucket: gcs.Bucket, stem: str, generation: int) -> None:
        self._bucket = bucket
        self.used = False  # a document was opened: there may be checkpoints to delete
        self.prefix = f"{stem}.pages/{generation}/"
        if len(f"{self.prefix}000000.json".encode()) > MAX_NAME_BYTES:
            self.prefix = ""  # only a document needs them; `pages` refuses it then

    def _listing(self) -> Iterator[gcs.Blob]:
        if not self.prefix:
            raise BadEvent(
                f"The page checkpoints' names would be over Cloud Storage's {MAX_NAME_BYTES} "
                "bytes: shorten the document's name or OUTPUT_PREFIX."
            )
        return self._bucket.list_blobs(
            prefix=self.prefix, fields="items(name),nextPageToken", retry=RETRY, timeout=60
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
                    retry=RETRY, timeout=TIMEOUT_SECONDS
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
                retry=RETRY,
                timeout=TIMEOUT_SECONDS,
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
                    blob.delete(retry=RETRY, timeout=TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("page checkpoints under %s left behind: %s", self.prefix, exc)

    def _name(self, number: int) -> str:
        return f"{self.prefix}{number:06d}.json"
