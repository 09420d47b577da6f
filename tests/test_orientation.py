"""Orient: pages turned 90, 180 or 270 degrees read as upright; boxes stay on the image sent."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from function import orientation, pipeline
from function.images import DecodedImage, decode_image
from function.settings import Settings
from tests import pdfs, render

ENGLISH = [
    "Quarterly report of the harbour office",
    "Ships arrived in March: 214, in April: 198",
    "The new crane was delivered on 3 May 2026",
    "Invoice 5521 was paid in full by the buyer",
    "Next inspection is planned for the autumn",
    "Questions go to the office on the first floor",
]
CHINESE = [
    "合计金额人民币发票号码",
    "本公司地址北京市海淀区",
    "联系电话请在工作日拨打",
    "开票日期二零二六年三月",
    "货物名称规格型号数量单价",
]
RECEIPT = [
    "CORNER SHOP LTD",
    "MILK 2L          3.49",
    "BREAD            2.10",
    "APPLES 1KG       2.80",
    "TOTAL            8.39",
    "CASH            10.00",
    "CHANGE           1.61",
]
PAGES = {
    "english": render.page(ENGLISH, size=(1000, 640), font_size=30),
    "chinese": render.page(CHINESE, size=(760, 560), font_size=40, cjk=True),
    "receipt": render.page(RECEIPT, size=(460, 760), font_size=28),
    "single line": render.page(["Invoice 2026 total 42.50"], size=(620, 96), font_size=40),
    # a label the line fills, as a plate: read whole as one line (detect.single_line)
    "label": render.page(["Invoice 2026 total 42.50"], size=(300, 48), font_size=28, origin=(6, 8)),
}


def turned(image: Image.Image, degrees: int) -> Image.Image:
    """`image` turned clockwise (Pillow's rotate turns counter-clockwise)."""
    return image.rotate(-degrees, expand=True) if degrees else image


def ocr(server, image: Image.Image) -> dict:
    response = server.post(render.encode(image, "PNG"))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_turn_back_finds_each_pixel_where_it_was_sent(degrees):
    bgr = np.zeros((30, 50, 3), np.uint8)
    bgr[7, 41] = 255  # row 7, column 41 of the image as sent
    sent = DecodedImage(bgr=bgr, width=100, height=60)  # the original is twice the size
    upright = orientation.turned(sent, degrees)
    v, u = (int(i) for i in np.argwhere(upright.bgr[..., 0])[0])

    turn = orientation.Turn(degrees, sent.width, sent.height)
    x, y = turn.back(*upright.to_original(u + 0.5, v + 0.5))

    assert (x, y) == pytest.approx((2 * 41.5, 2 * 7.5))


def test_one_upright_line_is_read_once_and_that_reading_kept(models):
    """A one-line image is read whole anyway: orienting it reads it first, and a confident
    upright reading is the one the response gets, not made a second time."""
    line = PAGES["label"].image
    settings = Settings()

    def oriented(image: Image.Image):
        decoded = decode_image(image, max_side=settings.max_side, max_pixels=settings.max_pixels)
        return decoded, *orientation.upright(decoded, models)

    sent, image, turn, quads, known = oriented(line)
    assert (image, turn.degrees) == (sent, 0)
    assert known is not None and known.score >= orientation.CONFIDENT
    kept = pipeline.read(image, models, quads=quads, known=known)
    assert kept == pipeline.read(sent, models)  # exactly what reading it afresh finds
    assert [found.text for found in kept] == ["Invoice 2026 total 42.50"]

    _, image, turn, quads, known = oriented(turned(line, 180))
    assert (turn.degrees, quads, known) == (180, None, None)  # read again once turned


@pytest.mark.parametrize("name", PAGES)
def test_a_page_turned_any_way_reads_as_it_does_upright(server, name):
    image = PAGES[name].image
    upright = ocr(server, image)
    assert upright["rotation"] == 0
    assert upright["text"].strip()

    for degrees in (90, 180, 270):
        found = ocr(server, turned(image, degrees))
        assert found["rotation"] == (360 - degrees) % 360, (name, degrees)
        assert found["text"] == upright["text"], (name, degrees)


@pytest.mark.parametrize("name", PAGES)
def test_upright_pages_read_exactly_as_without_auto_rotate(server, servers, name):
    fixed = servers(AUTO_ROTATE="false")
    image = PAGES[name].image
    with_it, without = ocr(server, image), ocr(fixed, image)

    assert with_it["text"] == without["text"]
    assert with_it["lines"] == without["lines"]
    assert without["rotation"] == 0
    assert ocr(fixed, turned(image, 180))["rotation"] == 0  # turned off: nothing is turned


def test_a_rotated_caption_does_not_turn_the_page_around_it(server):
    page = render.page(ENGLISH, size=(1100, 640), font_size=30)
    caption = render.page(
        ["Figure 3: arrivals by month"], size=(520, 50), font_size=26, origin=(8, 8)
    )
    page.image.paste(caption.image.rotate(90, expand=True), (1030, 60))

    for degrees in (0, 180):
        found = ocr(server, turned(page.image, degrees))
        assert found["rotation"] == degrees
        read = "".join(found["text"].split())
        assert all("".join(line.split()) in read for line in ENGLISH)


def test_boxes_are_on_the_image_as_sent(server):
    page = PAGES["english"]
    height = page.image.height
    sideways = turned(page.image, 90)  # clockwise: the upright (x, y) is now at (height - y, x)
    line = ENGLISH[3]
    left, top, right, bottom = page.lines[line]
    mapped = (height - bottom, left, height - top, right)

    found = ocr(server, sideways)

    (box,) = (
        b["box"] for b in found["lines"] if "".join(b["text"].split()) == "".join(line.split())
    )
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    dark = np.argwhere(np.asarray(sideways.convert("L")) < 128)
    inside = (
        (dark[:, 1] >= mapped[0] - 4)
        & (dark[:, 1] <= mapped[2] + 4)
        & (dark[:, 0] >= mapped[1] - 4)
        & (dark[:, 0] <= mapped[3] + 4)
    )
    rows, columns = dark[inside, 0], dark[inside, 1]
    assert len(rows) > 100  # the line's ink
    assert min(xs) - 2 <= columns.min() and columns.max() <= max(xs) + 2
    assert min(ys) - 2 <= rows.min() and rows.max() <= max(ys) + 2
    assert max(xs) - min(xs) < 3 * (mapped[2] - mapped[0])  # a line's box, not the page's
    # The first corner is the text's top-left: on this page, the box's top-right.
    assert box[0][0] > (min(xs) + max(xs)) / 2 and box[0][1] < (min(ys) + max(ys)) / 2


def test_each_scanned_pdf_page_is_turned_upright_on_its_own(server):
    """A scan fed upside down, a landscape sheet scanned sideways, a born-digital page: each
    page gets its own rotation; boxes stay on the page as displayed."""
    landscape = ["Quarterly arrivals by month", "March 214 April 198 May 230"]
    data = pdfs.pdf(
        [
            pdfs.ScanPage(ENGLISH[:3]),
            pdfs.ScanPage(ENGLISH[:3], turned=180),
            pdfs.ScanPage(landscape, pixels=(1200, 850), turned=90),
            pdfs.TextPage(ENGLISH[3:]),
        ]
    )

    response = server.post(data, "application/pdf")

    assert response.status_code == 200, response.text
    upright, upside_down, sideways, text = response.json()["pages"]
    assert [p["rotation"] for p in (upright, upside_down, sideways)] == [0, 180, 270]
    assert upright["source"] == upside_down["source"] == sideways["source"] == "ocr"
    assert upside_down["text"] == upright["text"]
    assert all("".join(line.split()) in "".join(upright["text"].split()) for line in ENGLISH[:3])
    assert "".join(sideways["text"].split()) == "".join("".join(landscape).split())
    assert (text["source"], text["rotation"]) == ("text_layer", 0)
    # Upside down, the first line read (the page's top line) is at the bottom of the page sent.
    top = max(y for _, y in upright["lines"][0]["box"])
    assert min(y for _, y in upside_down["lines"][0]["box"]) > 842 - top - 15
    for page in (upright, upside_down, sideways):
        assert all(
            0 <= x <= 595 and 0 <= y <= 842 for line in page["lines"] for x, y in line["box"]
        )
