"""Cloud Storage calls: one client per process, and the bounds every call keeps.

Shared by `storage` (results), `checkpoints` (a document's pages) and the backfill (listing).
"""

from __future__ import annotations

import functools

from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY

MAX_NAME_BYTES = 1024  # Cloud Storage's limit on an object name, in UTF-8 bytes

# Each storage call retries transient failures for a few seconds; past that the event fails
# and the platform's own retry (with backoff) takes over.
RETRY = DEFAULT_RETRY.with_timeout(5.0)
TIMEOUT_SECONDS = 20


@functools.cache
def client() -> gcs.Client:
    """One client per process, made on first use (after the fork), reusing its connections.

    With STORAGE_EMULATOR_HOST set, google-cloud-storage talks to that emulator with anonymous
    credentials and needs no project.
    """
    return gcs.Client()
