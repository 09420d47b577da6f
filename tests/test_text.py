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
    assert body["text"] == "\n\n".join(block_text(body, block) for block in body["blocks"])
    for block in body["blocks"]:
        assert block["kind"] == "text"
        assert [i for row in block["rows"] for cell in row for i in cell] == block["lines"]


def block_text(body: dict, block: dict) -> str:
    """A block as `text` has it: a row per line, cells split by tabs, a cell's lines by spaces."""
    return "\n".join(
        "\t".join(" ".join(body["lines"][i]["text"] for i in cell) for cell in row)
        for row in block["rows"]
    )


# -- tables, receipts and sidebars: a row is one line of text, its cells separated by tabs ----

FRUIT = [
    ["Fruit", "Colour", "Price", "Stock"],
    ["Apple", "Red", "1.20", "40"],
    ["Banana", "Yellow", "0.80", "25"],
    ["Cherry", "Dark red", "4.50", "12"],
]


def cells_of(text: str) -> list[list[str]]:
    """Each line of `text` split into its tab-separated cells, each squashed."""
    return [[squash(cell).lower() for cell in line.split("\t")] for line in text.splitlines()]


def wanted(rows: list[list[str | list[str]]]) -> list[list[str]]:
    return [
        [squash(" ".join(c) if isinstance(c, list) else c).lower() for c in row] for row in rows
    ]


@pytest.mark.parametrize("ruled", [True, False], ids=["ruled", "borderless"])
def test_a_table_comes_back_row_by_row_its_cells_separated_by_tabs(server, ruled):
    texts, rules, bottom = render.grid(FRUIT, [220, 220, 160, 160], ruled=ruled)
    body = server.post(render.placed(texts, (900, bottom + 60), rules)).json()

    assert cells_of(body["text"]) == wanted(FRUIT)
    (block,) = body["blocks"]
    assert block["kind"] == "table"
    assert [len(row) for row in block["rows"]] == [4, 4, 4, 4]
    assert block_text(body, block) == body["text"]


def test_a_wrapped_cell_is_one_cell_and_the_text_below_the_table_comes_after_it(server):
    table = [
        ["Year", "Rating", "Meaning"],
        ["2021", "AAA", ["Highest quality with", "very low credit risk", "over the long term"]],
        ["2022", "AA", ["High quality and", "very low credit risk"]],
    ]
    below = ["This paragraph is printed below the table.", "It is read after every row of it."]
    texts, rules, bottom = render.grid(table, [140, 160, 420])
    texts += [(40, bottom + 40 + k * 40, line) for k, line in enumerate(below)]
    body = server.post(render.placed(texts, (900, bottom + 160), rules)).json()

    table_text, after = body["text"].split("\n\n")
    assert cells_of(table_text) == wanted(table)
    assert squash(after) == squash("".join(below))
    assert [block["kind"] for block in body["blocks"]] == ["table", "text"]


def test_a_receipt_has_each_item_and_its_price_on_one_line(server):
    items = [("Flat white", "3.40"), ("Blueberry muffin", "2.80"), ("Orange juice", "4.10")]
    texts = [(150, 30, "CORNER CAFE"), (110, 75, "12 Market Street")]
    for k, (item, price) in enumerate(items):
        texts += [(40, 150 + k * 45, item), (400, 150 + k * 45, price)]
    texts += [(40, 300, "TOTAL"), (385, 300, "10.30"), (120, 370, "Thank you!")]
    body = server.post(render.placed(texts, (520, 430))).json()

    lines = cells_of(body["text"])
    for item, price in [*items, ("TOTAL", "10.30")]:
        assert [squash(item).lower(), price] in lines


def test_a_sidebar_beside_a_taller_body_is_read_after_it_not_interleaved(server):
    prose = [
        "Maintaining Neutral Rating on the shares",
        "The company reported first quarter results",
        "essentially in line with our estimates and",
        "with the consensus of the analysts who cover",
        "it. Revenue grew by four per cent on the year",
        "while margins were stable at the level of the",
        "last two quarters. We keep our estimates and",
        "our price target unchanged for this year and",
        "for the next one, and we see no reason to",
        "change the rating of the shares at this time.",
    ]
    sidebar = [["Valuation Data"], ["Price:", "$50.86"], ["EPS:", "$1.97"], ["Q1", "$2.35A"]]
    texts = [(40, 40 + k * 44, line) for k, line in enumerate(prose)]
    for k, row in enumerate(sidebar):
        texts += [(760 + 200 * c, 40 + k * 44, cell) for c, cell in enumerate(row)]
    body = server.post(render.placed(texts, (1160, 520))).json()

    body_text, side_text = body["text"].split("\n\n")
    assert squash(body_text) == squash("".join(prose))
    assert cells_of(side_text) == wanted(sidebar)


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
