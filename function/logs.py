"""Logging: Cloud Logging structured JSON on the platform, readable text on a laptop.

On Cloud Run (K_SERVICE is set) google-cloud-logging's StructuredLogHandler writes one JSON object
per line to stdout, with severity and the request's trace id, and needs no credentials or network.
Fields passed as `extra={"json_fields": {...}}` become jsonPayload fields there, and `key=value`
pairs in text mode.
"""

from __future__ import annotations

import logging
import os
import sys

from .settings import Settings

log = logging.getLogger("function")


def configure(settings: Settings) -> None:
    """Install one handler on the root logger, at LOG_LEVEL, and report start-up warnings."""
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "json" if os.environ.get("K_SERVICE") else "text"
    if fmt == "json":
        from google.cloud.logging_v2.handlers import StructuredLogHandler

        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
        handler: logging.Handler = StructuredLogHandler(stream=sys.stdout, project_id=project)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # library warnings become log entries, JSON on the platform
    for warning in settings.warnings:
        log.warning(warning)


def announce(message: str) -> None:
    """Write one INFO entry whatever LOG_LEVEL: for the line that says the process is ready.

    `Logger.handle` skips the level check that `Logger.info` makes; the handler still formats it
    (JSON on the platform).
    """
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, message, (), None))


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "json_fields", None)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text
