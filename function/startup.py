"""What a process says and does at start-up: bad settings, the "ready" line, an engine that fails.

- A bad setting ends start-up with its one-line message (naming the variable) and exit code 2,
  not a traceback from deep inside functions-framework's import of main.py.
- When the engine is loaded, one line says so whatever LOG_LEVEL: load time, the settings that
  decide memory and speed, and where to POST. With the default LOG_LEVEL=WARNING it is
  otherwise silent until something goes wrong. Then the steps are warmed up, in the background.
- When the engine cannot load, the process can never serve. Staying up answering 503 would let
  a platform keep it: Cloud Run's default startup probe only checks that the port accepts
  connections. So after logging the cause, and after a moment in which requests that waited
  for the engine receive their 503 `engine_failed`, the worker exits with gunicorn's "worker
  failed to boot" code (3); gunicorn then stops and the instance's process exits with 3, so the
  platform reports a failed start and replaces the instance instead of routing traffic to it.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import sys
import time

from . import allocator, logs
from .engine import Engine
from .service import Service
from .settings import Settings, SettingsError

log = logging.getLogger("function")

EXIT_BAD_SETTINGS = 2
EXIT_ENGINE_FAILED = 3  # gunicorn's WORKER_BOOT_ERROR: its master halts instead of re-forking
ANSWER_GRACE_SECONDS = 2.0  # requests that waited for the engine get their 503 meanwhile


def settings_or_exit() -> Settings:
    """The settings from the environment, or the one-line reason they are invalid and exit 2."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"serverless-ocr: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def load_engine(service: Service) -> None:
    """Load the engine in the serving process; announce and warm up when ready, exit if it
    cannot load."""

    def loaded(engine: Engine) -> None:
        announce_ready(engine, service.settings)
        warm_up(engine)

    service.engine.preload(on_loaded=loaded, on_failure=exit_engine_failed)


def announce_ready(engine: Engine, settings: Settings) -> None:
    """The one line that says this process serves, whatever LOG_LEVEL."""
    where = ", ".join(listening_urls()) or "its port"
    if os.environ.get("FUNCTION_TARGET") == "ocr_storage":
        what = f"POST Cloud Storage events to {where}"
    else:
        what = f"open {where} in a browser, or POST an image or PDF to it (GET: service info)"
    logs.announce(
        f"Ready: OCR engine loaded in {engine.load_seconds:.2f} s; {what}; "
        f"MAX_SIDE={settings.max_side} "
        f"MAX_CONCURRENT_REQUESTS={settings.max_concurrent_requests} "
        f"OCR_THREADS={settings.ocr_threads} MAX_IMAGE_BYTES={settings.max_image_bytes} "
        f"LOG_LEVEL={settings.log_level}"
    )


def warm_up(engine: Engine) -> None:
    """Detect and recognise once on a blank strip of a page's width, then hand memory back.

    The first page-sized run makes ONNX Runtime, OpenCV and the allocator set up ~15 MB they
    keep for the life of the process. Done here, in the background after the load, that cost
    is neither the first request's latency nor a step in the idle memory after it. A request
    arriving meanwhile waits for it, as it would for the load.
    """
    # Imported here, not with this module (main.py's import): a cv2 that cannot load is the
    # engine's failure (503 engine_failed, exit 3), not a function that fails to import.
    import numpy as np

    from . import detect, recognise

    with engine.session() as models:
        if models.detector is not None and models.recogniser is not None:
            blank = np.full((detect.MIN_STRIP_HEIGHT, detect.DETECT_SIDE, 3), 255, dtype=np.uint8)
            detect.find_lines(blank, models.detector)
            recognise.read(blank[: recognise.HEIGHT], models.recogniser, models.alphabet)
        allocator.trim()


def exit_engine_failed(engine: Engine) -> None:
    """Log why this process cannot serve, let waiting requests be answered, exit non-zero."""
    log.critical(
        "This instance cannot serve: the OCR engine failed to load (%s). Exiting with code %d "
        "so that the platform replaces it.",
        engine.failure,
        EXIT_ENGINE_FAILED,
    )
    time.sleep(ANSWER_GRACE_SECONDS)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_ENGINE_FAILED)  # from the load thread; sys.exit would end only that thread


def listening_urls() -> list[str]:
    """http:// URLs of the TCP sockets this process listens on (the server's, inherited).

    Read from the sockets themselves rather than from the command line, so it is right
    whatever started the server. Empty where open descriptors cannot be listed.
    """
    urls = []
    try:
        descriptors = [int(name) for name in os.listdir("/dev/fd")]
    except OSError:
        return urls
    for fd in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN
            ):
                host, port = sock.getsockname()[:2]
                host = {"0.0.0.0": "localhost", "::": "localhost"}.get(host, host)
                urls.append(f"http://{f'[{host}]' if ':' in host else host}:{port}/")
        except OSError:
            pass
        finally:
            sock.detach()  # the descriptor is the server's: never close it
    return sorted(set(urls))
