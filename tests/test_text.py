"""Text that reads like the page, over real HTTP: word spaces, columns and blocks, single lines."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from tests import render


def two_column_page() -> tuple[bytes, list[str], list[str]]:
    left = [f"Left column line {i} about apples" for i in range(1, 9)]
    right = [f"Right column line {i} about pears" for i in range(1, 9)]
    image = Image.new("RGB", (1700, 900), "white")
    draw = ImageDraw.Draw(image)
    font = render.latin_font(30)
    draw.text((60, 40), "Fruit Review Quarterly", fill="black", font=render.latin_font(48))
    for i, (one, other) in enumerate(zip(left, right, strict=True)):
        y = 160 + i * 80
        draw.text((60, y), one, fill="black", font=font)
        draw.text((900, y), other, fill="black", font=font)
    return render.encode(image, "PNG"), left, right


@pytest.fixture(scope="module")
def columns(server) -> tuple[dict, list[str], list[str]]:
    data, left, right = two_column_page()
    response = server.post(data, "image/png")
    assert response.status_code == 200, response.text
    return response.json(), left, right


def squash(text: str) -> str:
    """Order is what is tested here; word spaces have tests of their own."""
    return "".join(text.split())


def test_a_two_column_page_comes_back_column_by_column(columns):
    body, left, right = columns
    read = [squash(line["text"]) for line in body["lines"]]

    assert read == [squash(line) for line in ["Fruit Review Quarterly", *left, *right]]
    blocks = [squash(block) for block in body["text"].split("\n\n")]
    assert blocks[-2:] == [squash("".join(left)), squash("".join(right))]


def test_blocks_hold_every_line_once_and_their_boxes_contain_their_lines(columns):
    body, _, _ = columns
    indices = [i for block in body["blocks"] for i in block["lines"]]
    assert indices == list(range(len(body["lines"])))
    for block in body["blocks"]:
        (left, top), _, (right, bottom), _ = block["box"]
        for i in block["lines"]:
            for x, y in body["lines"][i]["box"]:
                assert left <= x <= right and top <= y <= bottom
    assert body["text"] == "\n\n".join(
        "\n".join(body["lines"][i]["text"] for i in block["lines"]) for block in body["blocks"]
    )


def test_an_english_sentence_keeps_its_spaces(server):
    sentence = "Please send the signed contract back to our office by Friday"
    image = render.page([sentence], size=(1500, 140), font_size=40).image
    body = server.post(render.encode(image, "PNG")).json()
    assert body["text"] == sentence


def test_a_chinese_line_gets_no_spaces(server):
    line = "合计金额人民币贰佰元整"
    image = render.page([line], size=(700, 140), font_size=48, cjk=True).image
    body = server.post(render.encode(image, "PNG")).json()
    assert body["text"] == line


@pytest.mark.parametrize(
    "text, size, font_size",
    [
        ("HELLO", (200, 60), 40),  # a single word
        ("A4 1234 SAMPLE", (260, 40), 28),  # a label, plate-sized
        ("Order 5521 shipped to 14 Harbour Road, Leith, on 3 March 2026", (1400, 50), 34),
    ],
)
def test_an_image_that_is_one_line_is_read_whole(server, text, size, font_size):
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((4, 4), text, fill="black", font=render.latin_font(font_size))
    body = server.post(render.encode(image, "PNG")).json()
    assert body["text"] == text


def test_a_plate_like_chinese_line_is_read_whole(server):
    image = Image.new("RGB", (150, 44), (20, 60, 170))
    ImageDraw.Draw(image).text((6, 4), "京A12345", fill="white", font=render.cjk_font(32))
    body = server.post(render.encode(image, "PNG")).json()
    assert body["text"] == "京A12345"
