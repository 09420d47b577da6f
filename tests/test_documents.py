"""Whole documents over real HTTP: PDFs (scanned, born-digital, mixed, broken) and multi-page
TIFFs, page ranges, MAX_PAGES, a deadline mid-document; and the documents module's own rules."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from function import documents
from function.errors import BadRequest, PagesOutOfRange, TooManyPages
from function.settings import Settings
from tests import pdfs, render

INVOICE = ["Invoice 2026-117", "Total due 42.50 EUR"]
SCAN = ["Scanned page two", "Signed 4 March"]
DENSE = [f"Line {i:02d}: the quick brown fox jumps over 0123" for i in range(20)]


def squash(text: str) -> str:
    return "".join(text.split()).lower()


@pytest.fixture(scope="module")
def mixed_pdf() -> bytes:
    """Page 1 born-digital, page 2 a scan, page 3 text whose layer is garbage."""
    return pdfs.pdf(
        [
            pdfs.TextPage(INVOICE),
            pdfs.ScanPage(SCAN),
            pdfs.TextPage(["Credit note 77"], scrambled=True),
        ]
    )


@pytest.fixture(scope="module")
def text_pdf() -> bytes:
    return pdfs.pdf([pdfs.TextPage(INVOICE), pdfs.TextPage(["Page two of two"])])


@pytest.fixture(scope="module")
def limited(servers):
    """MAX_PAGES=3: more pages are refused before any work."""
    return servers(MAX_PAGES="3")


def test_a_scanned_multi_page_pdf_is_ocrd_page_by_page(server):
    data = pdfs.pdf([pdfs.ScanPage(["First scanned page"]), pdfs.ScanPage(SCAN)])

    response = server.post(data, "application/pdf")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["document"] == {"type": "pdf", "page_count": 2}
    assert body["complete"] is True and body["pages_not_read"] == []
    assert [page["page"] for page in body["pages"]] == [1, 2]
    assert [page["source"] for page in body["pages"]] == ["ocr", "ocr"]
    assert "lines" not in body and "image" not in body  # per page: see docs/documents.md
    first, second = body["pages"]
    assert squash(first["text"]) == "firstscannedpage"
    assert all(squash(line) in squash(second["text"]) for line in SCAN)
    assert body["text"] == first["text"] + "\f" + second["text"]
    for page in body["pages"]:
        assert (page["width"], page["height"], page["unit"]) == (595, 842, "pt")
        assert page["scale"] == pytest.approx(Settings.max_side / 842, abs=0.001)
        assert page["blocks"] and page["timings_ms"]["total"] > 0 and page["rss_mb"] > 0
        for line in page["lines"]:  # boxes on the page, in points from its top-left corner
            assert all(0 <= x <= 595 and 0 <= y <= 842 for x, y in line["box"])
    # The scan draws its first line 80 px down a 1200 px image stretched over 842 pt.
    top = min(y for _, y in first["lines"][0]["box"])
    assert abs(top - 80 * 842 / 1200) < 15
    assert float(response.headers["X-Peak-RSS-MB"]) > 0
    assert "X-Pages-Not-Read" not in response.headers


def test_a_born_digital_pdf_is_read_from_its_text_layer(server, text_pdf):
    body = server.post(text_pdf, "application/pdf").json()

    first, second = body["pages"]
    assert [first["source"], second["source"]] == ["text_layer", "text_layer"]
    assert [line["text"] for line in first["lines"]] == INVOICE  # exact: no OCR involved
    assert first["scale"] is None and all(line["score"] == 1.0 for line in first["lines"])
    assert second["text"] == "Page two of two"
    assert body["text"] == "Invoice 2026-117\nTotal due 42.50 EUR\fPage two of two"
    # Drawn at x=72 pt, the first baseline 72 pt below the top, 24 pt Helvetica.
    (left, top), _, (right, bottom), _ = first["lines"][0]["box"]
    assert abs(left - 72) < 3 and 45 < top < 60 and 70 < bottom < 80 and right > left + 100


def test_a_mixed_pdf_is_decided_page_by_page_and_a_garbage_layer_is_ocrd(server, mixed_pdf):
    body = server.post(mixed_pdf, "application/pdf").json()

    assert [page["source"] for page in body["pages"]] == ["text_layer", "ocr", "ocr"]
    texts = [squash(page["text"]) for page in body["pages"]]
    assert texts[0] == squash(" ".join(INVOICE))
    assert all(squash(line) in texts[1] for line in SCAN)
    # Page 3's layer extracts as private-use code points; OCR reads what is drawn.
    assert texts[2] == "creditnote77"
    assert not any(0xE000 <= ord(char) <= 0xF8FF for char in body["text"])


def test_a_multi_page_tiff_is_a_document_in_pixels(server):
    data = pdfs.multipage_tiff([["Fax page one"], ["Fax page two"], ["Fax page three"]])

    body = server.post(data, "image/tiff").json()

    assert body["document"] == {"type": "tiff", "page_count": 3}
    assert [squash(page["text"]) for page in body["pages"]] == [
        "faxpageone",
        "faxpagetwo",
        "faxpagethree",
    ]
    assert all(
        (page["width"], page["height"], page["unit"], page["source"]) == (900, 300, "px", "ocr")
        for page in body["pages"]
    )


def test_an_image_keeps_the_image_response(server):
    body = server.post(render.encode(render.page(INVOICE).image, "PNG")).json()

    assert "pages" not in body and "document" not in body
    assert {"text", "lines", "blocks", "image"} <= body.keys()


@pytest.mark.parametrize("form", ["octet-stream", "form-urlencoded", "multipart", "json"])
def test_a_pdf_is_accepted_in_every_form(server, text_pdf, form):
    if form == "multipart":
        response = requests.post(
            server.url, files={"file": ("doc.pdf", text_pdf, "application/pdf")}, timeout=60
        )
    elif form == "json":
        payload = json.dumps({"image": base64.b64encode(text_pdf).decode()}).encode()
        response = server.post(payload, "application/json")
    else:
        response = server.post(text_pdf, f"application/{form.replace('form-', 'x-www-form-')}")

    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith("Invoice 2026-117")


def test_format_text_is_the_pages_joined_by_form_feeds(server, text_pdf):
    response = server.post(text_pdf, "application/pdf", params={"format": "text"})

    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "Invoice 2026-117\nTotal due 42.50 EUR\fPage two of two"


@pytest.mark.parametrize(
    ("pages", "read"), [("2", [2]), ("3,1", [1, 3]), ("2-", [2, 3]), ("1-2,2", [1, 2])]
)
def test_a_page_range_reads_only_those_pages(server, mixed_pdf, pages, read):
    body = server.post(mixed_pdf, "application/pdf", params={"pages": pages}).json()

    assert [page["page"] for page in body["pages"]] == read
    assert body["document"]["page_count"] == 3 and body["complete"] is True


@pytest.mark.parametrize(
    ("pages", "status", "code"),
    [
        ("abc", 400, "bad_request"),
        ("1-", 200, None),
        ("0", 400, "bad_request"),
        ("3-1", 400, "bad_request"),
        ("1,,2", 400, "bad_request"),
        ("4", 400, "pages_out_of_range"),
        ("2-9", 400, "pages_out_of_range"),
    ],
)
def test_a_bad_page_range_is_refused_with_its_reason(server, text_pdf, pages, status, code):
    response = server.post(text_pdf, "application/pdf", params={"pages": pages})

    assert response.status_code == status, response.text
    if code is not None:
        error = response.json()["error"]
        assert error["code"] == code and repr(pages) in error["message"]


def test_a_page_range_on_an_image_is_page_one_of_one(server):
    png = render.encode(render.page(INVOICE).image, "PNG")

    assert server.post(png, params={"pages": "1"}).status_code == 200
    refused = server.post(png, params={"pages": "2"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "pages_out_of_range"


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: pdfs.pdf([pdfs.TextPage(INVOICE)])[:300], 400, "invalid_document"),
        (lambda: pdfs.pdf([pdfs.ScanPage(SCAN)])[:-2000], 400, "invalid_document"),
        (lambda: b"%PDF-1.7\nnot really", 400, "invalid_document"),
        (lambda: pdfs.pdf([pdfs.TextPage(INVOICE)], encrypted=True), 422, "encrypted_document"),
        (lambda: pdfs.pdf([]), 422, "empty_document"),
    ],
    ids=["truncated-early", "truncated-late", "not-a-pdf", "encrypted", "no-pages"],
)
def test_a_bad_document_gets_a_json_error_and_the_function_keeps_serving(
    server, text_pdf, make, status, code
):
    response = server.post(make(), "application/pdf")

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert server.post(text_pdf, "application/pdf").status_code == 200


def test_an_absurd_page_size_is_rendered_smaller_not_refused(server):
    # 200 x 200 inches, PDF's largest page: 14400 pt square, 3.6 GP at 300 dpi.
    data = pdfs.pdf([pdfs.ScanPage(["Huge page"])], size=(14400, 14400))

    body = server.post(data, "application/pdf").json()

    (page,) = body["pages"]
    assert page["source"] == "ocr" and (page["width"], page["height"]) == (14400, 14400)
    assert page["scale"] == pytest.approx(Settings.max_side / 14400, abs=0.001)
    assert squash(page["text"]) == "hugepage"


def test_concurrent_pdfs_are_each_read_whole(server, text_pdf, mixed_pdf):
    # PDFium is not thread-safe: without the process-wide lock, concurrent documents corrupt
    # each other or crash the process.
    documents_in = [text_pdf, mixed_pdf] * 2

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda data: server.post(data, "application/pdf"), documents_in))

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429} and 200 in statuses, statuses
    for data, response in zip(documents_in, responses, strict=True):
        if response.status_code == 200:
            expected = 2 if data is text_pdf else 3
            assert len(response.json()["pages"]) == expected


def test_more_pages_than_max_pages_is_refused_before_any_work(limited):
    data = pdfs.pdf([pdfs.TextPage([f"Page {n}"]) for n in range(1, 5)])

    refused = limited.post(data, "application/pdf")
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "too_many_pages" and "MAX_PAGES (3)" in error["message"]
    assert "pages_read=" not in limited.log().splitlines()[-1]

    three = limited.post(data, "application/pdf", params={"pages": "2-4"})
    assert three.status_code == 200
    assert [page["text"] for page in three.json()["pages"]] == ["Page 2", "Page 3", "Page 4"]


def test_a_deadline_mid_document_lists_the_pages_not_read(servers):
    # Two text-layer pages (milliseconds each), then 30 dense scans, each a full OCR: far more
    # than the one-second deadline allows on any machine, so the document stops part-way and
    # the response has the pages read and names every page it did not read.
    server = servers(REQUEST_TIMEOUT_SECONDS="1", MAX_CONCURRENT_REQUESTS="4", THREADS="8")
    scans = [pdfs.ScanPage(DENSE)] * 30  # shared with tests/test_lifecycle.py
    data = pdfs.pdf([pdfs.TextPage(["Page one"]), pdfs.TextPage(["Page two"]), *scans])

    response = server.post(data, "application/pdf")

    assert response.status_code == 200, response.text
    body = response.json()
    read = [page["page"] for page in body["pages"]]
    assert read[:2] == [1, 2] and read == list(range(1, len(read) + 1))
    assert body["complete"] is False and body["pages_not_read"] == list(range(len(read) + 1, 33))
    assert body["stopped"]["code"] == "timeout"
    assert response.headers["X-Pages-Not-Read"].split(",")[-1] == "32"
    text = server.post(data, "application/pdf", params={"format": "text"})
    assert text.headers["X-Pages-Not-Read"].split(",")[-1] == "32"
    assert text.text.startswith("Page one\fPage two")


# The documents module on its own: no server.

SETTINGS = Settings.from_env({})


def test_page_ranges_parse_strictly():
    assert documents.PageRanges("1-3,7").numbers(10) == [1, 2, 3, 7]
    assert documents.PageRanges(" 9- , 2 ").numbers(10) == [2, 9, 10]
    for bad in ("", "1-2-3", "a", "-3", "1;2", "0-2", "5-4", "1.5", "1234567890"):
        with pytest.raises(BadRequest):
            documents.PageRanges(bad)
    with pytest.raises(PagesOutOfRange):
        documents.PageRanges("11").numbers(10)
    with pytest.raises(TooManyPages):
        documents.chosen_pages(10, documents.PageRanges("1-"), max_pages=9)
    assert documents.chosen_pages(10, documents.PageRanges("1-9"), max_pages=9)[-1] == 9


def test_the_text_layer_modes(mixed_pdf):
    document = documents.open_document(mixed_pdf)
    try:
        layer = document.page(1, SETTINGS, "auto")
        assert layer.image is None and [text for text, _ in layer.lines] == INVOICE
        forced = document.page(1, SETTINGS, "ocr")
        assert forced.lines is None and forced.image.bgr.shape == (1600, 1131, 3)
        scan = document.page(2, SETTINGS, "only")  # never OCR'd: its (empty) layer it is
        assert scan.image is None and scan.lines == []
        garbage = document.page(3, SETTINGS, "only")
        assert garbage.image is None and garbage.lines[0][0].startswith("\ue043")
    finally:
        document.close()


def box(left: float, top: float, right: float, bottom: float) -> list[tuple[float, float]]:
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def test_a_layer_is_used_when_readable_and_on_a_scan_only_when_it_covers_the_page():
    area = 595 * 842
    line = ("Total due 42.50 EUR", box(72, 72, 400, 100))
    assert documents.usable_layer([line], image_share=0.0, page_area=area)
    assert not documents.usable_layer([], image_share=0.0, page_area=area)
    assert not documents.usable_layer([("   ", box(0, 0, 10, 10))], 0.0, area)
    garbage = ("\ue049\ue06e\ufffd\x01oice", box(72, 72, 400, 100))
    assert not documents.usable_layer([garbage], 0.0, area)
    one_bad = ("Total due 42.50 EUR and more text\ufffd", box(72, 72, 400, 100))
    assert documents.usable_layer([one_bad], 0.0, area)  # under GARBAGE_SHARE
    # A page number stamped on a scan is not the scan's text; an OCR layer over it is.
    stamp = ("Page 3 of 10", box(260, 800, 340, 815))
    assert not documents.usable_layer([stamp], image_share=1.0, page_area=area)
    ocr_layer = [(f"Line {i} of the scanned page", box(60, 60 + 20 * i, 540, 76 + 20 * i))
                 for i in range(30)]  # fmt: skip
    assert documents.usable_layer(ocr_layer, image_share=1.0, page_area=area)


@pytest.mark.parametrize(
    ("points", "env", "pixels"),
    [
        ((595, 842), {}, (1131, 1600)),  # A4: MAX_SIDE on the long side
        ((595, 842), {"MEMORY_OPTIMIZATION": "false"}, (2479, 3508)),  # PDF_DPI (300)
        ((595, 842), {"MEMORY_OPTIMIZATION": "false", "PDF_DPI": "150"}, (1240, 1754)),
        ((144, 72), {}, (600, 300)),  # a 2 x 1 inch label: PDF_DPI, never more
        ((14400, 14400), {"MEMORY_OPTIMIZATION": "false"}, (7071, 7071)),  # MAX_PIXELS
    ],
)
def test_render_scale_is_bounded_by_dpi_side_and_pixels(points, env, pixels):
    settings = Settings.from_env(env)
    scale = documents.render_scale(*points, settings)
    assert (round(points[0] * scale), round(points[1] * scale)) == pixels
    assert pixels[0] * pixels[1] <= settings.max_pixels
