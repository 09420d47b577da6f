"""HTTP: request body -> image bytes, OCR through the admission gate, every outcome -> a response.

This is the one place where errors become HTTP: `OcrError.status`/`code` for known failures,
503 `out_of_memory` for a failed allocation, 500 `internal` (traceback logged, not sent) for the
rest. The one HTML answer is the try-it page (function/web/index.html), for a GET that prefers
text/html over JSON; it posts to this same URL, so it can ask nothing of the function that a
script could not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.resources
import io
import json
import logging
import re
import time

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.formparser import FormDataParser

from .deadline import Deadline
from .documents import PageRanges, is_pdf
from .errors import (
    BadRequest,
    EmptyBody,
    EngineFailed,
    Internal,
    MethodNotAllowed,
    OcrError,
    OutOfMemory,
    TooLarge,
    UnsupportedMediaType,
)
from .images import has_image_signature, is_accepted_media_type
from .pipeline import DocumentResult, OcrResult
from .service import Service

log = logging.getLogger("function.invocation")

_CHUNK = 64 * 1024
_ENVELOPE = 64 * 1024  # room for multipart headers or JSON around the image bytes
_MAX_FORM_PARTS = 100
_FORMATS = ("json", "text")


def _inline_hashes(page: str, tag: str) -> str:
    """CSP sources for the page's inline <script>/<style> elements: their sha256, nothing else."""
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
    )


_PAGE = (importlib.resources.files(__package__) / "web" / "index.html").read_text("utf-8")
# Nothing external: the page's own inline code and style (by hash), previews of the user's own
# file (blob:), and requests back to this function.
_PAGE_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            f"script-src {_inline_hashes(_PAGE, 'script')}",
            f"style-src {_inline_hashes(_PAGE, 'style')}",
            "img-src blob: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def handle(request: flask.Request, service: Service) -> flask.Response:
    """Serve one HTTP invocation; never raises."""
    started = time.perf_counter()
    deadline = service.deadline()
    fields: dict[str, object] = {"method": request.method, "content_type": request.mimetype}
    error: OcrError | None = None
    try:
        if request.method in ("GET", "HEAD") and _wants_page(request):
            fields["page"] = True
            response = _page()
        elif request.method in ("GET", "HEAD"):
            response = _service_info(service, fields)
        elif request.method == "POST":
            response = _recognise(request, service, fields, deadline)
        else:
            raise MethodNotAllowed(
                f"{request.method} is not supported: POST an image, or GET for service info.",
                headers={"Allow": "GET, HEAD, POST"},
            )
    except OcrError as exc:
        error = exc
    except MemoryError:
        error = OutOfMemory("The instance ran out of memory for this request.")
    except Exception:
        log.exception("Unhandled error while serving %s", request.method)
        error = Internal("The function failed unexpectedly; the error was logged.")
    finally:
        _discard_unread_body(request)
    if error is not None:
        fields["error"] = error.code
        response = error_response(error)
    if request.method in ("GET", "HEAD"):
        response.vary.add("Accept")  # one URL, two answers: caches must keep them apart
    _log_invocation(request, response, fields, started)
    return response


def _wants_page(request: flask.Request) -> bool:
    """A browser: text/html preferred over JSON. Ties, */* and no Accept at all stay JSON, so
    probes, curl and scripts get the service info exactly as before."""
    choice = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return choice == "text/html"


def _page() -> flask.Response:
    response = flask.Response(_PAGE, 200, mimetype="text/html")
    response.charset = "utf-8"
    response.headers.update(_PAGE_HEADERS)
    return response


def _service_info(service: Service, fields: dict[str, object]) -> flask.Response:
    """200 once the engine is loaded, 503 before: what a readiness or startup probe needs."""
    info = service.info()
    if info["engine"]["loaded"]:
        return _json_response(info, 200)
    if service.engine.failure is not None:  # no Retry-After: this process will never be ready
        info["error"] = EngineFailed.because(service.engine.failure).to_dict()["error"]
        fields["error"] = EngineFailed.code
        return _json_response(info, 503)
    fields["error"] = "not_ready"
    info["error"] = {"code": "not_ready", "message": "The OCR engine is loading; retry shortly."}
    response = _json_response(info, 503)
    response.headers["Retry-After"] = "1"
    return response


def error_response(error: OcrError) -> flask.Response:
    response = _json_response(error.to_dict(), error.status)
    response.headers.update(error.headers)
    return response


def _recognise(
    request: flask.Request, service: Service, fields: dict[str, object], deadline: Deadline
) -> flask.Response:
    output = request.args.get("format", "json").lower()
    if output not in _FORMATS:
        raise BadRequest(f"format={output!r} is not supported: use json or text.")
    pages = PageRanges(request.args["pages"]) if "pages" in request.args else None
    with service.admission():
        data = read_image_bytes(request, service.settings.max_image_bytes)
        fields["bytes_in"] = len(data)
        result = service.ocr(data, deadline, pages)
        del data
    fields.update(_result_fields(result))
    if output == "text":
        response = flask.Response(result.text, 200, mimetype="text/plain")
        response.charset = "utf-8"
    else:
        response = _json_response(result.to_dict(), 200)
    if isinstance(result, DocumentResult) and result.not_read:
        response.headers["X-Pages-Not-Read"] = ",".join(map(str, result.not_read))
    response.headers["X-Peak-RSS-MB"] = str(result.memory.peak_rss_mb)
    response.headers["X-Memory-Level"] = result.memory.level
    return response


def read_image_bytes(request: flask.Request, max_bytes: int) -> bytes:
    """The image (or PDF) from a raw body, a multipart field `file`, or JSON
    `{"image": "<base64>"}`.

    The body is read once, bounded, before anything parses it, so no framework limit can fire
    later (functions-framework reads the body again after the response).
    """
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        data = _from_multipart(_read_body(request, max_bytes + _ENVELOPE, max_bytes), request)
    elif mimetype == "application/json":
        data = _from_json(_read_body(request, max_bytes * 4 // 3 + _ENVELOPE, max_bytes))
    elif is_accepted_media_type(mimetype):
        data = _read_body(request, max_bytes, max_bytes)
    elif mimetype == "application/x-www-form-urlencoded":
        data = _from_form_urlencoded(_read_body(request, max_bytes, max_bytes))
    else:
        raise UnsupportedMediaType(
            f"Content-Type {mimetype!r} is not accepted. Send the image as image/* or "
            "application/octet-stream (a PDF as application/pdf), as multipart/form-data "
            'field \'file\', or as application/json {"image": "<base64>"}.'
        )
    if not data:
        raise EmptyBody("The request carries no image bytes.")
    if len(data) > max_bytes:
        raise TooLarge.over(max_bytes)
    return data


def _read_body(request: flask.Request, limit: int, max_bytes: int) -> bytes:
    """At most `limit` bytes of body, refused from Content-Length where the client sent one."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge.over(max_bytes)
    chunks, size = [], 0
    while chunk := request.stream.read(_CHUNK):  # bounded even for chunked bodies
        size += len(chunk)
        if size > limit:
            raise TooLarge.over(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _from_form_urlencoded(body: bytes) -> bytes:
    """`curl --data-binary @scan.jpg URL` without -H labels the image as a form: accept the
    bytes when they are an image or a PDF, and refuse a real form."""
    if not body or has_image_signature(body) or is_pdf(body):
        return body
    raise UnsupportedMediaType(
        "The body is application/x-www-form-urlencoded and not an image. Send the image "
        "bytes (curl --data-binary @scan.jpg), as multipart/form-data field 'file', or as "
        'application/json {"image": "<base64>"}.'
    )


def _from_multipart(body: bytes, request: flask.Request) -> bytes:
    if "boundary" not in request.mimetype_params:
        raise BadRequest("multipart/form-data without a boundary parameter.")
    parser = FormDataParser(_in_memory, silent=False, max_form_parts=_MAX_FORM_PARTS)
    try:
        _, form, files = parser.parse(
            io.BytesIO(body), "multipart/form-data", len(body), request.mimetype_params
        )
    except (HTTPException, ValueError) as exc:
        raise BadRequest(f"The multipart body could not be parsed ({exc}).") from None
    del body
    upload = files.get("file")
    if upload is None:
        if "file" in form:
            raise BadRequest("Field 'file' must be a file upload, not a text field.")
        raise BadRequest("The multipart body has no field named 'file'.")
    return upload.stream.getvalue()


def _in_memory(*_args: object, **_kwargs: object) -> io.BytesIO:
    """Multipart file parts stay in memory: the body is already there, and on Cloud Run /tmp
    is memory too."""
    return io.BytesIO()


def _from_json(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("The body is not valid JSON.") from None
    del body  # the base64 text and the image bytes are copies enough
    if not isinstance(document, dict):
        raise BadRequest('JSON bodies must be an object {"image": "<base64 image bytes>"}.')
    if "image" not in document:
        present = ", ".join(repr(name) for name in list(document)[:5]) or "no fields"
        raise BadRequest(
            f'The JSON object has no "image" field (it has {present}); send '
            '{"image": "<base64 image bytes>"}.'
        )
    encoded = document["image"]
    if not isinstance(encoded, str):
        raise BadRequest('The "image" field must be a string of base64 image bytes.')
    if encoded.startswith("data:") and "," in encoded:  # accept data: URLs as browsers make them
        encoded = encoded.split(",", 1)[1]
    try:
        return base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The 'image' field is not valid base64.") from None


def _discard_unread_body(request: flask.Request) -> None:
    """Read and drop what the client sent but we did not need (a refused upload).

    functions-framework reads any unread body into memory after the response; a refused 30 MB
    upload would otherwise be buffered whole, once per refused request.
    """
    try:
        while request.stream.read(_CHUNK):
            pass
    except Exception:  # the client went away; nothing is left to protect
        pass


def _json_response(body: dict[str, object], status: int) -> flask.Response:
    return flask.Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")


def _result_fields(result: OcrResult | DocumentResult) -> dict[str, object]:
    if isinstance(result, DocumentResult):
        shape: dict[str, object] = {
            "document": result.kind,
            "page_count": result.page_count,
            "pages_read": len(result.pages),
            "pages_not_read": len(result.not_read),
            "lines": sum(len(page["lines"]) for page in result.pages),
        }
    else:
        shape = {
            "width": result.width,
            "height": result.height,
            "scale": result.scale,
            "lines": len(result.lines),
        }
    return {
        **shape,
        **{f"{step}_ms": ms for step, ms in result.timings_ms.items()},
        "peak_rss_mb": result.memory.peak_rss_mb,
        "rss_mb": result.memory.rss_mb,
        "memory_level": result.memory.level,
    }


def _log_invocation(
    request: flask.Request, response: flask.Response, fields: dict[str, object], started: float
) -> None:
    """One entry per invocation; its severity says whether anyone needs to look at it."""
    fields["status"] = response.status_code
    fields["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if fields.get("error") == "not_ready":  # a readiness probe during start-up: expected
        severity = logging.DEBUG
    elif response.status_code >= 500:
        severity = logging.ERROR
    elif response.status_code == 429 or fields.get("memory_level", "normal") != "normal":
        severity = logging.WARNING
    elif request.method in ("GET", "HEAD"):
        severity = logging.DEBUG
    else:
        severity = logging.INFO
    log.log(severity, "%s %s", request.method, response.status_code, extra={"json_fields": fields})
