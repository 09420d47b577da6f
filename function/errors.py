"""Errors are values: each exception carries its HTTP status and a machine-readable code.

`function.http` turns them into responses in one place; the Cloud Storage trigger uses
`permanent` to decide between "log and acknowledge" and "raise so the platform retries".
The classes below look alike on purpose: together they are the table of errors.
"""

from __future__ import annotations


class OcrError(Exception):
    """Base of every error a client can be told about."""

    status: int = 500
    code: str = "internal"
    permanent: bool = True

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(OcrError):
    status, code = 400, "bad_request"


class EmptyBody(OcrError):
    status, code = 400, "empty_body"


class InvalidImage(OcrError):
    status, code = 400, "invalid_image"


class InvalidDocument(OcrError):
    """A PDF that cannot be read: damaged, truncated, or not a PDF after all."""

    status, code = 400, "invalid_document"


class EncryptedDocument(OcrError):
    """A PDF that needs a password to open: the function has none to give."""

    status, code = 422, "encrypted_document"


class EmptyDocument(OcrError):
    status, code = 422, "empty_document"


class PagesOutOfRange(OcrError):
    """`pages` names a page the document does not have."""

    status, code = 400, "pages_out_of_range"


class TooManyPages(OcrError):
    """More pages asked for than MAX_PAGES: refused before any page is read."""

    status, code = 413, "too_many_pages"


class MethodNotAllowed(OcrError):
    status, code = 405, "method_not_allowed"


class TooLarge(OcrError):
    status, code = 413, "too_large"

    @classmethod
    def over(cls, max_image_bytes: int) -> TooLarge:
        return cls(f"The image is larger than MAX_IMAGE_BYTES ({max_image_bytes:,} bytes).")


class TooManyPixels(OcrError):
    status, code = 413, "too_many_pixels"


class UnsupportedMediaType(OcrError):
    status, code = 415, "unsupported_media_type"


class Busy(OcrError):
    status, code, permanent = 429, "busy", False


class OutOfMemory(OcrError):
    status, code, permanent = 503, "out_of_memory", False


class EngineFailed(OcrError):
    """The OCR engine could not be loaded: this process can never serve, and will exit."""

    status, code, permanent = 503, "engine_failed", False

    @classmethod
    def because(cls, cause: str) -> EngineFailed:
        return cls(
            f"The OCR engine failed to load ({cause}); this instance cannot serve and is "
            "shutting down. The log has the traceback: usually a system library that cv2 or "
            "onnxruntime needs is missing, or the instance has too little memory."
        )


class Timeout(OcrError):
    """The request passed REQUEST_TIMEOUT_SECONDS; it stopped before (more) engine work."""

    status, code, permanent = 504, "timeout", False


class ShuttingDown(OcrError):
    """The instance received SIGTERM: new work is refused and waiting work given up in time."""

    status, code, permanent = 503, "shutting_down", False


class Internal(OcrError):
    status, code, permanent = 500, "internal", False


class BadEvent(OcrError):
    """An event this function cannot act on: another type, no object metadata, or an object
    whose result could never be written."""

    status, code = 400, "bad_event"


class ObjectGone(OcrError):
    """The object generation an event names was deleted or replaced before it was read."""

    status, code = 404, "object_gone"
