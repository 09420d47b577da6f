"""SIGTERM: the platform's notice that this instance stops, SIGKILL following 10 s later.

Cloud Run sends SIGTERM when it scales an instance in and SIGKILL 10 s after. gunicorn's worker
then stops accepting connections but would wait up to its graceful timeout (30 s) for the ones
in flight, so a request still queued for the engine would be killed mid-answer. Once SIGTERM has
come, every request's deadline is capped at `BUDGET_SECONDS` after it: new work is refused and
waiting work gives up with 503 `shutting_down` while there is still time to say so, and a
storage event is answered "retry" with nothing written.

Only the main thread may install a signal handler, and in the serving process that thread is
gunicorn's, which installs its own SIGTERM handler after the fork; the handler just turns the
worker's `alive` flag false. So in gunicorn's worker a small thread watches that flag; where
nothing forks (the Flask debug server) a handler is installed directly.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

# Cloud Run's 10 s grace, less time for an engine call already running to finish (it cannot
# be interrupted) and for the answers to reach their clients.
BUDGET_SECONDS = 7.0
_POLL_SECONDS = 0.1

_began: float | None = None


def began() -> bool:
    """Whether this process has been told to stop."""
    return _began is not None


def expires() -> float:
    """The monotonic time by which every request must be answered (infinite until SIGTERM)."""
    return float("inf") if _began is None else _began + BUDGET_SECONDS


def begin() -> None:
    """Start the shutdown budget (idempotent)."""
    global _began
    if _began is None:
        _began = time.monotonic()
        log.warning("SIGTERM: answering requests in flight within %.0f s", BUDGET_SECONDS)


def watch() -> None:
    """Notice SIGTERM in the process that serves: every forked child, or this one."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_start_watcher)
    elif threading.current_thread() is threading.main_thread():
        _chain_handler()


def _start_watcher() -> None:
    threading.Thread(target=_watch_gunicorn_worker, name="sigterm-watch", daemon=True).start()


def _watch_gunicorn_worker() -> None:
    """Poll the flag gunicorn's worker SIGTERM handler clears (`Worker.handle_exit`)."""
    while _began is None:
        handler = signal.getsignal(signal.SIGTERM)
        worker = getattr(handler, "__self__", None)
        if getattr(worker, "alive", True) is False:
            begin()
            return
        time.sleep(_POLL_SECONDS)


def _chain_handler() -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: object) -> None:
        begin()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
