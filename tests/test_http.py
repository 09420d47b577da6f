"""The HTTP function over real HTTP: text read back, every input form, the response schema."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

import pytest
import requests
from PIL import Image

from function.settings import Settings
from tests import render
from tests.conftest import start_server

ENGLISH = ["Invoice 2026-117", "Total due 42.50 EUR"]
MAX_SIDE = Settings.max_side
CHINESE = ["发票号码 12345", "合计金额 人民币"]


def squash(text: str) -> str:
    """Compare text ignoring whitespace and case: OCR may merge or split spaces."""
    return "".join(text.split()).lower()


def assert_reads(body: dict, expected: list[str]) -> None:
    got = squash(body["text"])
    for line in expected:
        assert squash(line) in got, f"{line!r} not read back from {body['text']!r}"


@pytest.fixture(scope="module")
def english_png() -> bytes:
    return render.encode(render.page(ENGLISH).image, "PNG")


def test_reads_english_text_with_the_documented_schema(server, english_png):
    response = server.post(english_png, "image/png")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert_reads(body, ENGLISH)
    assert body["text"].replace("\n\n", "\n") == "\n".join(line["text"] for line in body["lines"])
    for line in body["lines"]:
        assert 0.0 <= line["score"] <= 1.0
        assert len(line["box"]) == 4 and all(len(point) == 2 for point in line["box"])
    assert body["image"] == {"width": 900, "height": 300, "scale": 1.0}
    timings = body["timings_ms"]
    assert timings["total"] >= timings["decode"] >= 0 and timings["total"] >= timings["ocr"] > 0
    mem = body["memory"]
    assert mem["peak_rss_mb"] > 0 and mem["rss_mb"] > 0
    assert mem["level"] in ("normal", "attention", "warning")
    assert mem["limit_mb"] is None or mem["limit_mb"] > 0
    assert response.headers["X-Peak-RSS-MB"] == str(mem["peak_rss_mb"])


def test_reads_chinese_text(server):
    image = render.page(CHINESE, cjk=True, font_size=44).image
    response = server.post(render.encode(image, "JPEG", quality=92), "image/jpeg")

    assert response.status_code == 200
    assert_reads(response.json(), CHINESE)


def test_lines_come_in_reading_order(server):
    lines = ["First line here", "Second line below", "Third and last"]
    image = render.page(lines, size=(800, 420)).image
    body = server.post(render.encode(image, "PNG")).json()

    assert [squash(line["text"]) for line in body["lines"]] == [squash(line) for line in lines]


@pytest.mark.parametrize(
    "content_type", ["image/png", "application/octet-stream", "image/jpeg", "IMAGE/PNG", None]
)
def test_raw_body_with_any_image_content_type(server, english_png, content_type):
    # The declared image subtype need not match the bytes, and no Content-Type means raw bytes.
    response = server.post(english_png, content_type)

    assert response.status_code == 200, response.text
    assert_reads(response.json(), ENGLISH)


def test_an_image_sent_as_a_form_is_read(server, english_png):
    # `curl --data-binary @scan.png URL` without -H sends this type: the bytes are an image.
    response = server.post(english_png, "application/x-www-form-urlencoded")

    assert response.status_code == 200, response.text
    assert_reads(response.json(), ENGLISH)


def test_multipart_field_file(server, english_png):
    response = requests.post(
        server.url, files={"file": ("scan.png", english_png, "image/png")}, timeout=60
    )

    assert response.status_code == 200, response.text
    assert_reads(response.json(), ENGLISH)


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_json_base64(server, english_png, prefix):
    encoded = prefix + base64.b64encode(english_png).decode()
    response = server.post(json.dumps({"image": encoded}).encode(), "application/json")

    assert response.status_code == 200, response.text
    assert_reads(response.json(), ENGLISH)


def test_format_text_returns_plain_text(server, english_png):
    response = server.post(english_png, params={"format": "text"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert_reads({"text": response.text}, ENGLISH)
    assert float(response.headers["X-Peak-RSS-MB"]) > 0


def test_a_dense_300_dpi_a4_page_reads_every_line(server):
    # Long lines squeezed to 19 px high: with rapidocr's angle classifier on, about one line in
    # four was called upside down, flipped, and lost (measured: 34 of 44 read).
    lines = [
        f"Line {i:02d}: the quick brown fox jumps over the lazy dog 0123456789" for i in range(44)
    ]
    page = render.page(lines, size=(2480, 3508), font_size=42, origin=(150, 150)).image
    body = server.post(render.encode(page, "JPEG", quality=90), "image/jpeg").json()

    assert body["image"]["scale"] == pytest.approx(MAX_SIDE / 3508, abs=0.001)
    assert len(body["lines"]) == 44
    assert_reads(body, lines)


def test_boxes_are_in_original_coordinates_when_the_image_is_shrunk(server):
    # 4800 px wide: shrunk to MAX_SIDE before the model.
    drawn = render.page(["WIDE PAGE"], size=(4800, 1200), font_size=200, origin=(1500, 500))
    body = server.post(render.encode(drawn.image, "PNG")).json()

    assert body["image"]["width"] == 4800 and body["image"]["height"] == 1200
    assert body["image"]["scale"] == pytest.approx(MAX_SIDE / 4800, abs=0.001)
    (line,) = body["lines"]
    assert squash(line["text"]) == "widepage"
    xs = [x for x, _ in line["box"]]
    ys = [y for _, y in line["box"]]
    left, top, right, bottom = drawn.lines["WIDE PAGE"]
    tolerance = 60  # px of the original: the detector pads each box a little
    assert abs(min(xs) - left) < tolerance and abs(max(xs) - right) < tolerance
    assert abs(min(ys) - top) < tolerance and abs(max(ys) - bottom) < tolerance


def test_exif_orientation_is_applied(server):
    # Stored sideways with orientation 6 ("rotate 90° clockwise to display"), as phones do.
    upright = render.page(ENGLISH, size=(900, 300)).image
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    response = server.post(render.encode(stored, "JPEG", quality=92, exif=exif), "image/jpeg")

    body = response.json()
    assert body["image"]["width"] == 900 and body["image"]["height"] == 300
    assert_reads(body, ENGLISH)


def test_exif_orientation_of_a_shrunk_photo(server):
    # Stored 1000x6400 with orientation 8; displayed 6400x2000, shrunk for the model.
    drawn = render.page(["ROTATED PHOTO"], size=(6400, 2000), font_size=320, origin=(800, 600))
    stored = drawn.image.transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8
    body = server.post(render.encode(stored, "JPEG", quality=90, exif=exif), "image/jpeg").json()

    assert body["image"]["width"] == 6400 and body["image"]["height"] == 2000
    assert body["image"]["scale"] == pytest.approx(MAX_SIDE / 6400, abs=0.001)
    (line,) = body["lines"]
    assert squash(line["text"]) == "rotatedphoto"
    left, top, right, bottom = drawn.lines["ROTATED PHOTO"]
    assert abs(min(x for x, _ in line["box"]) - left) < 120
    assert abs(min(y for _, y in line["box"]) - top) < 120


def test_readiness_is_503_until_the_engine_is_loaded(tmp_path):
    """Probes read the status code: 200 must mean loaded, from the first answer on."""
    server = start_server(tmp_path, wait_for_engine=False)
    try:
        answers = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (answers and answers[-1][1]):
            response = requests.get(server.url, timeout=10)
            answers.append((response.status_code, response.json()["engine"]["loaded"]))
            time.sleep(0.02)
        assert answers[-1] == (200, True)
        assert all(status == (200 if loaded else 503) for status, loaded in answers), answers
    finally:
        server.stop()


def test_get_is_a_readiness_probe(server):
    info = requests.get(server.url, timeout=10).json()

    assert info["engine"]["loaded"] is True
    assert info["engine"]["load_seconds"] > 0
    assert info["settings"]["max_side"] == MAX_SIDE
    assert info["settings"]["max_concurrent_requests"] >= 1
    assert info["memory"]["rss_mb"] > 0
    assert info["version"]


def test_one_log_entry_per_invocation(servers, english_png):
    server = servers(LOG_LEVEL="INFO")
    before = server.log().count("POST 200")
    server.post(english_png)

    entries = [line for line in server.log().splitlines() if "POST 200" in line]
    assert len(entries) == before + 1
    assert "peak_rss_mb=" in entries[-1] and "total_ms=" in entries[-1]
    assert "bytes_in=" in entries[-1]


# The try-it page: GET / from a browser. Everything else at GET / is the service info above.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "text/html, application/json", "text/plain", "image/*"],
)
def test_get_without_a_preference_for_html_is_the_service_info(server, accept):
    # None: no Accept header at all (requests otherwise sends */*).
    response = requests.get(server.url, headers={"Accept": accept}, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["engine"]["loaded"] is True
    assert response.headers["Vary"] == "Accept"
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html", "application/json;q=0.5, text/*"])
def test_get_preferring_html_is_the_page(server, accept):
    response = requests.get(server.url, headers={"Accept": accept}, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    assert response.text.startswith("<!doctype html>")
    assert '<input type="file" id="file"' in response.text
    head = requests.head(server.url, headers={"Accept": accept}, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/html")


def test_the_page_loads_nothing_from_anywhere_and_runs_only_its_own_code(server):
    response = requests.get(server.url, headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    page, headers = response.text, response.headers

    policy = dict(
        (directive.split(" ", 1) + [""])[:2]
        for directive in headers["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    for tag in ("script", "style"):  # exactly the page's own inline elements, by hash
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        assert len(bodies) == 1
        digest = base64.b64encode(hashlib.sha256(bodies[0].encode()).digest()).decode()
        assert policy[f"{tag}-src"] == f"'sha256-{digest}'"
    assert policy["img-src"] == "blob: data:"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    # No reference to anything outside the page: the one href is an empty data: icon.
    assert re.findall(r"""(?:src|href|action)\s*=\s*["']([^"']*)""", page) == ["data:,"]
    assert "url(" not in page and "@import" not in page and "<iframe" not in page


def test_a_post_asking_for_html_still_gets_json(server, english_png):
    response = server.post(english_png, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert_reads(response.json(), ENGLISH)
