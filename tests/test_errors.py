"""Every error code of the HTTP contract, each followed by a good request on the same process."""

from __future__ import annotations

import base64
import json
import resource
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from tests import render

GOOD = render.encode(render.page(["Still serving"], size=(600, 120)).image, "PNG")


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    return error


def assert_still_serves(server) -> None:
    response = server.post(GOOD, "image/png")
    assert response.status_code == 200, response.text
    assert "stillserving" in "".join(response.json()["text"].split()).lower()


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"", "image/png"),
        (b"", "application/octet-stream"),
        (json.dumps({"image": ""}).encode(), "application/json"),
    ],
    ids=["raw-png", "raw-octet-stream", "json"],
)
def test_empty_body(server, data, content_type):
    assert_error(server.post(data, content_type), 400, "empty_body")
    assert_still_serves(server)


def test_empty_multipart_file(server):
    response = requests.post(server.url, files={"file": ("a.png", b"", "image/png")}, timeout=30)
    assert_error(response, 400, "empty_body")
    assert_still_serves(server)


@pytest.mark.parametrize(
    "data",
    [
        GOOD[: len(GOOD) // 2],  # truncated PNG
        render.encode(render.page(["cut"]).image, "JPEG")[:600],  # truncated JPEG
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # PNG signature, garbage after
        b"Just some text, not an image at all.\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS needs Ghostscript: never
    ],
    ids=["truncated-png", "truncated-jpeg", "png-garbage", "text", "eps"],
)
def test_invalid_image(server, data):
    assert_error(server.post(data, "image/png"), 400, "invalid_image")
    assert_still_serves(server)


def test_decompression_bomb_is_refused_from_the_header(server):
    # 100 megapixels of white compress to a few kB; decoded as RGB they would take 300 MB.
    bomb = render.encode(Image.new("1", (10_000, 10_000), 1), "PNG")
    assert len(bomb) < 100_000

    error = assert_error(server.post(bomb, "image/png"), 413, "too_many_pixels")
    assert "10000x10000" in error["message"]
    assert_still_serves(server)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_method_not_allowed(server, method):
    response = requests.request(method, server.url, data=GOOD, timeout=30)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert_still_serves(server)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/zip", "video/mp4"],
)
def test_unsupported_media_type(server, content_type):
    error = assert_error(server.post(GOOD, content_type), 415, "unsupported_media_type")
    assert content_type in error["message"]
    assert_still_serves(server)


def test_a_real_form_is_unsupported_media_type(server):
    # What `curl -d a=b` sends; an image with that label is accepted (see test_http).
    error = assert_error(
        server.post(b"name=scan&lang=en", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    assert "not an image" in error["message"] and "--data-binary" in error["message"]
    assert_still_serves(server)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"foo": "bar"}', """has no "image" field (it has 'foo')"""),
        (b"{}", 'has no "image" field (it has no fields)'),
        (b'{"image": 42}', 'The "image" field must be a string'),
        (b'["image"]', "JSON bodies must be an object"),
    ],
    ids=["other-field", "empty-object", "not-a-string", "array"],
)
def test_json_errors_say_what_is_wrong(server, body, says):
    error = assert_error(server.post(body, "application/json"), 400, "bad_request")
    assert says in error["message"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'["image"]', "application/json"),
        (b'{"picture": "aGVsbG8="}', "application/json"),
        (b'{"image": 42}', "application/json"),
        (b'{"image": "***not base64***"}', "application/json"),
        (b"--x\r\nContent-Disposition: form-data; name=other\r\n\r\n1\r\n--x--\r\n",
         "multipart/form-data; boundary=x"),
        (b"--x\r\n\r\n", "multipart/form-data"),
    ],
    ids=["json-syntax", "json-array", "json-no-image", "json-not-string", "base64",
         "multipart-no-file-field", "multipart-no-boundary"],
)  # fmt: skip
def test_bad_request(server, data, content_type):
    assert_error(server.post(data, content_type), 400, "bad_request")
    assert_still_serves(server)


def test_deeply_nested_json_is_a_bad_request_not_a_crash(server):
    body = b"[" * 200_000 + b"]" * 200_000
    assert_error(server.post(body, "application/json"), 400, "bad_request")
    assert_still_serves(server)


def test_a_text_field_named_file_is_a_bad_request(server):
    response = requests.post(server.url, files={"file": (None, "hello")}, timeout=30)
    error = assert_error(response, 400, "bad_request")
    assert "file upload" in error["message"]
    assert_still_serves(server)


def test_bad_format_option(server):
    error = assert_error(server.post(GOOD, params={"format": "xml"}), 400, "bad_request")
    assert "xml" in error["message"]
    assert_still_serves(server)


@pytest.fixture(scope="module")
def small_limit(servers):
    return servers(MAX_IMAGE_BYTES="200000")


def test_too_large_raw(small_limit):
    big = render.noise_png((300, 300))
    assert len(big) > 200_000
    error = assert_error(small_limit.post(big, "image/png"), 413, "too_large")
    assert "MAX_IMAGE_BYTES" in error["message"]
    assert_still_serves(small_limit)


def test_too_large_chunked_without_content_length(small_limit):
    big = render.noise_png((300, 300))
    chunks = (big[i : i + 50_000] for i in range(0, len(big), 50_000))
    response = requests.post(
        small_limit.url, data=chunks, headers={"Content-Type": "image/png"}, timeout=30
    )
    assert_error(response, 413, "too_large")
    assert_still_serves(small_limit)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_too_large_multipart_far_over_the_limit_is_json(small_limit, chunked):
    # Far over the limit: a framework-level limit used to fire after the response (HTML 500).
    form = requests.Request(
        "POST",
        small_limit.url,
        files={"file": ("big.png", render.noise_png((1300, 1300)), "image/png")},
    ).prepare()
    assert len(form.body) > 5_000_000
    body = (form.body[i : i + 65536] for i in range(0, len(form.body), 65536))
    response = requests.post(
        small_limit.url,
        data=body if chunked else form.body,
        headers={"Content-Type": form.headers["Content-Type"]},
        timeout=60,
    )
    error = assert_error(response, 413, "too_large")
    assert "MAX_IMAGE_BYTES (200,000 bytes)" in error["message"]
    assert_still_serves(small_limit)


def test_too_large_json_and_multipart(small_limit):
    big = render.noise_png((300, 300))
    body = json.dumps({"image": base64.b64encode(big).decode()}).encode()
    assert_error(small_limit.post(body, "application/json"), 413, "too_large")
    multipart = requests.post(
        small_limit.url, files={"file": ("big.png", big, "image/png")}, timeout=30
    )
    assert_error(multipart, 413, "too_large")
    assert_still_serves(small_limit)


def test_busy_beyond_the_concurrency_cap(servers):
    server = servers(MAX_CONCURRENT_REQUESTS="1", THREADS="8")
    page = render.page([f"Line number {i}" for i in range(12)], size=(1600, 1800)).image
    data = render.encode(page, "PNG")

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: server.post(data, "image/png"), range(8)))

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "busy")
            assert int(response.headers["Retry-After"]) >= 1
    assert_still_serves(server)


def test_out_of_memory_is_a_503_and_the_process_survives(servers):
    # A dedicated process whose serving worker is then capped at its current address space
    # plus 120 MB: a 49 MP PNG (147 MB as RGB) cannot be decoded in it, a small image still can.
    # MALLOC_ARENA_MAX: a request thread's first allocation must not reserve a new 64 MB arena.
    server = servers(MAX_CONCURRENT_REQUESTS="1", MALLOC_ARENA_MAX="2")
    big = render.encode(Image.new("RGB", (7000, 7000), "white"), "PNG")
    assert_still_serves(server)  # warm: the threads and arenas a request needs exist
    pid = server.worker_pid()
    vm_size = _vm_size_bytes(pid)
    resource.prlimit(pid, resource.RLIMIT_AS, (vm_size + 120 * 2**20, resource.RLIM_INFINITY))
    try:
        error = assert_error(server.post(big, "image/png"), 503, "out_of_memory")
        assert "memory" in error["message"]
        assert_still_serves(server)
        assert server.worker_pid() == pid  # the same worker, not a restarted one
    finally:
        resource.prlimit(pid, resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)


def _vm_size_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def test_internal_errors_are_json_without_internals(tmp_path):
    """The one error with no honest trigger over HTTP: check its mapping in-process."""
    import flask

    from function import http
    from function.service import Service
    from function.settings import Settings

    class BrokenService(Service):
        def ocr(self, data: bytes):
            raise RuntimeError("secret internal detail")

    app = flask.Flask("test")
    service = BrokenService(Settings.from_env({}))
    with app.test_request_context("/", method="POST", data=GOOD, content_type="image/png"):
        response = http.handle(flask.request, service)

    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal"
    assert "secret" not in body["error"]["message"]
