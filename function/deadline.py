"""A per-request deadline: REQUEST_TIMEOUT_SECONDS after arrival, or sooner once SIGTERM came.

The platform answers the client for us at its timeout, but nothing stops the thread still
working for it: without a deadline of our own, one pathological image keeps the process's single
engine for minutes while everything queued behind it times out too. The pipeline calls `check()`
between its steps, and waiting for the decoder or the engine gives up at the deadline
(`hold()`), so a request past its time stops using the engine soon after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from . import shutdown
from .errors import ShuttingDown, Timeout

_WAIT_SLICE_SECONDS = 0.1


class Deadline:
    """Made once per request; `check()` raises Timeout (504) once past it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._expires = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, min(self._expires, shutdown.expires()) - time.monotonic())

    def check(self) -> None:
        """Raise ShuttingDown (503) or Timeout (504) if there is no time left for more work."""
        now = time.monotonic()
        if now >= shutdown.expires():
            raise ShuttingDown(
                "The instance is shutting down; the request was stopped before finishing. "
                "Retry it.",
                headers={"Retry-After": "1"},
            )
        if now >= self._expires:
            raise Timeout(
                f"The request took longer than REQUEST_TIMEOUT_SECONDS ({self.seconds:g} s) and "
                "was stopped. Retry later, or send a smaller image."
            )

    @contextmanager
    def hold(self, lock: threading.Lock) -> Iterator[None]:
        """Hold `lock`, waiting for it no longer than the time left.

        The wait is sliced because SIGTERM can shorten the time left while it goes on.
        """
        while not lock.acquire(timeout=min(self.remaining(), _WAIT_SLICE_SECONDS)):
            if self.remaining() <= 0:
                self.check()
                raise Timeout(  # acquire gave up a hair before the clock says so
                    f"The request took longer than REQUEST_TIMEOUT_SECONDS ({self.seconds:g} s)."
                )
        try:
            yield
        finally:
            lock.release()
