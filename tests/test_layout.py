"""The layout step: blocks in reading order from line boxes, on synthetic boxes and real OCR."""

from __future__ import annotations

import math
import random

import pytest
from PIL import Image, ImageDraw

from function import pipeline
from function.engine import Engine
from function.images import decode
from function.layout import Block, Box, Rules, arrange, find, hull, rows, tables
from function.settings import Settings
from tests import render

H = 20.0  # line height of the synthetic pages
PITCH = 28.0  # baseline-to-baseline distance


def column(left: float, right: float, rows: int, top: float = 0.0) -> list[Box]:
    """A column of full-width prose lines."""
    return [(left, top + k * PITCH, right, top + k * PITCH + H) for k in range(rows)]


def order(blocks: list[Block]) -> list[int]:
    return [i for block in blocks for i in block.lines]


def block_of(blocks: list[Block], i: int) -> int:
    return next(k for k, block in enumerate(blocks) if i in block.lines)


def assert_well_formed(boxes: list[Box], blocks: list[Block]) -> None:
    """Every index exactly once, and each block's box the hull of its lines."""
    assert sorted(order(blocks)) == list(range(len(boxes)))
    for block in blocks:
        assert block.lines
        lines = [boxes[i] for i in block.lines]
        assert block.box == (
            min(b[0] for b in lines),
            min(b[1] for b in lines),
            max(b[2] for b in lines),
            max(b[3] for b in lines),
        )


def test_empty_input_has_no_blocks():
    assert arrange([]) == []


def test_one_line_is_one_block():
    assert arrange([(10, 20, 300, 45)]) == [
        Block(kind="text", rows=(((0,),),), box=(10.0, 20.0, 300.0, 45.0))
    ]


def test_a_single_column_reads_top_to_bottom_whatever_the_input_order():
    boxes = column(0, 400, 6)
    shuffled = [boxes[k] for k in (3, 0, 5, 1, 4, 2)]

    blocks = arrange(shuffled)

    assert_well_formed(shuffled, blocks)
    assert [shuffled[i] for i in order(blocks)] == boxes
    assert len(blocks) == 1


def test_blocks_are_paragraphs_also_on_a_widely_spaced_page():
    def paragraph(top: float) -> list[Box]:  # lines 0.9 line heights apart, as in 1.5 spacing
        return [(0, top + k * 38, 600, top + k * 38 + H) for k in range(4)]

    boxes = [*paragraph(0), *paragraph(4 * 38 + 20)]

    blocks = arrange(boxes)

    assert [block.lines for block in blocks] == [(0, 1, 2, 3), (4, 5, 6, 7)]


def test_two_columns_on_a_common_baseline_grid_read_column_by_column():
    left, right = column(0, 400, 8), column(440, 840, 8)
    boxes = [
        box for pair in zip(left, right, strict=True) for box in pair
    ]  # the engine's row order

    blocks = arrange(boxes)

    assert_well_formed(boxes, blocks)
    assert order(blocks) == list(range(0, 16, 2)) + list(range(1, 16, 2))


def test_two_column_lines_the_detector_ran_together_stay_in_the_left_column():
    left, right = column(0, 400, 8), column(440, 840, 8)
    merged = (0, left[3][1], 840, left[3][3])
    boxes = [*left[:3], merged, *left[4:], *right[:3], *right[4:]]
    given = sorted(boxes, key=lambda b: (b[1], b[0]))

    reading = [given[i] for i in order(arrange(given))]

    assert reading == boxes


def test_double_spaced_columns_read_column_by_column():
    left = [(0, k * 46.0, 400, k * 46.0 + H) for k in range(6)]  # gaps of 1.3 lines
    right = [(440, k * 46.0, 840, k * 46.0 + H) for k in range(6)]
    boxes = sorted(left + right, key=lambda b: (b[1], b[0]))

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == left + right


def test_columns_of_different_line_pitch_read_column_by_column():
    left = column(0, 400, 10)
    right = [(440, 7 + k * 37.0, 840, 7 + k * 37.0 + 26) for k in range(7)]
    boxes = sorted(left + right, key=lambda b: (b[1], b[0]))

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == left + right


def test_a_heading_across_two_columns_comes_before_them():
    heading = (0, 0, 840, 40)
    left, right = column(0, 400, 6, top=70), column(440, 840, 6, top=70)
    boxes = [heading, *right, *left]

    blocks = arrange(boxes)

    assert_well_formed(boxes, blocks)
    assert [boxes[i] for i in order(blocks)] == [heading, *left, *right]
    assert blocks[0].lines == (0,)


def test_a_heading_between_two_column_sections_is_read_between_them():
    above = column(0, 400, 4), column(440, 840, 4)
    heading = (0, 130, 840, 160)
    below = column(0, 400, 4, top=180), column(440, 840, 4, top=180)
    boxes = [*above[0], *above[1], heading, *below[0], *below[1]]

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == boxes


def test_a_table_reads_row_by_row_in_one_block():
    cells = [
        (x, 10 + r * PITCH, x + 60, 10 + r * PITCH + H)
        for r in range(6)
        for x in (0.0, 160.0, 320.0, 480.0)
    ]
    shuffled = cells[::-1]

    blocks = arrange(shuffled)

    assert_well_formed(shuffled, blocks)
    assert len(blocks) == 1
    assert [shuffled[i] for i in order(blocks)] == cells


def test_a_table_with_long_row_labels_reads_row_by_row():
    rows = []
    for r in range(8):
        top = r * PITCH
        rows.append((0, top, 240, top + H))  # "Investment Cast Products": prose-wide
        rows += [(x, top, x + 60, top + H) for x in (300.0, 400.0, 500.0)]  # $568.8 ...

    assert order(arrange(rows)) == list(range(len(rows)))


def test_receipt_rows_split_by_the_detector_stay_left_to_right_on_their_row():
    boxes = [
        (0, 0, 380, 20),  # SHOP NAME
        (0, 28, 380, 48),  # 12 MAIN STREET
        (0, 56, 150, 76),  # COFFEE
        (300, 57, 380, 77),  # 3.50
        (0, 84, 160, 104),  # CAKE
        (300, 85, 380, 105),  # 4.00
        (0, 112, 110, 132),  # TOTAL
        (300, 111, 380, 131),  # 7.50
        (0, 140, 380, 160),  # THANK YOU
    ]

    blocks = arrange(boxes)

    assert_well_formed(boxes, blocks)
    assert order(blocks) == list(range(len(boxes)))
    assert block_of(blocks, 6) == block_of(blocks, 7)


def test_receipt_items_with_their_prices_on_the_next_row_read_top_to_bottom():
    boxes = []
    for k in range(4):
        boxes.append((0, k * 48, 300, k * 48 + 20))  # SB-5882 CAMIS NCR BILL BOOK
        boxes.append((320, k * 48 + 24, 380, k * 48 + 44))  # 7.00

    assert order(arrange(boxes)) == list(range(len(boxes)))


def test_receipt_labels_and_amounts_a_little_off_their_row_stay_on_it():
    boxes = []
    for k in range(6):
        boxes.append((0, k * PITCH, 80, k * PITCH + H))  # CASH
        boxes.append((400, k * PITCH + 8, 460, k * PITCH + H + 8))  # $6.60, skewed down

    assert order(arrange(boxes)) == list(range(len(boxes)))


def test_transcript_line_numbers_in_a_margin_come_before_the_text():
    numbers = [(0, k * PITCH, 22, k * PITCH + H) for k in range(12)]
    text = column(60, 700, 12)
    boxes = [box for pair in zip(numbers, text, strict=True) for box in pair]

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == numbers + text


def test_two_transcript_pages_side_by_side_read_page_by_page():
    def transcript(x: float) -> list[Box]:
        numbers = [(x, k * PITCH, x + 22, k * PITCH + H) for k in range(10)]
        return numbers + column(x + 60, x + 600, 10)

    left, right = transcript(0), transcript(660)
    boxes = sorted(left + right, key=lambda b: (b[1], b[0]))

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == left + right


def test_a_form_of_scattered_fields_reads_row_by_row():
    rows = [0.0, 45.0, 90.0, 135.0]  # a line and a quarter apart: fields, not columns
    boxes = [(x, y, x + 90, y + H) for y in rows for x in (0.0, 250.0, 500.0)]

    assert order(arrange(boxes)) == list(range(len(boxes)))


def skewed(box: Box, degrees: float) -> Box:
    """The hull of a box rotated about the page's origin, as a detector finds a skewed line."""
    left, top, right, bottom = box
    a = math.radians(degrees)
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    return hull(
        (x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)) for x, y in corners
    )


@pytest.mark.parametrize("degrees", [-3, -1, 1, 3])
def test_skewed_columns_still_read_column_by_column(degrees):
    boxes = [skewed(b, degrees) for b in (*column(0, 400, 8), *column(440, 840, 8))]
    given = sorted(boxes, key=lambda b: (b[1], b[0]))

    reading = [given[i] for i in order(arrange(given))]

    assert reading == boxes


@pytest.mark.parametrize("degrees", [-1, 1])
def test_a_slightly_skewed_table_still_reads_row_by_row(degrees):
    cells = [
        skewed((x, 10 + r * PITCH, x + 60, 10 + r * PITCH + H), degrees)
        for r in range(6)
        for x in (0.0, 160.0, 320.0, 480.0)
    ]

    assert order(arrange(cells)) == list(range(len(cells)))


def test_degenerate_boxes_are_kept():
    boxes = [
        (5, 5, 5, 5),  # zero size
        (10, 0, 200, 20),
        (10, 0, 200, 20),  # duplicate
        (300, 40, 100, 20),  # corners given the wrong way round
        (0, 30, 0, 60),  # zero width
        (50, 100, 400, 100),  # zero height
    ]

    blocks = arrange(boxes)

    assert sorted(order(blocks)) == list(range(len(boxes)))
    for block in blocks:
        left, top, right, bottom = block.box
        assert left <= right and top <= bottom


def test_all_zero_size_boxes_are_one_block_each_index_once():
    blocks = arrange([(0, 0, 0, 0)] * 5)

    assert sorted(order(blocks)) == list(range(5))


@pytest.mark.parametrize("seed", range(20))
def test_random_overlapping_boxes_come_back_exactly_once_in_blocks_that_contain_them(seed):
    rng = random.Random(seed)
    boxes = []
    for _ in range(rng.randint(1, 120)):
        left, top = rng.uniform(0, 2000), rng.uniform(0, 2600)
        boxes.append((left, top, left + rng.uniform(0, 900), top + rng.uniform(0, 60)))

    blocks = arrange(boxes)

    assert_well_formed(boxes, blocks)


def test_hull_of_a_quadrilateral():
    assert hull([[10, 12], [110, 8], [112, 40], [9, 44]]) == (9.0, 8.0, 112.0, 44.0)


# -- rows and cells ----------------------------------------------------------------------------


def test_a_row_splits_into_cells_at_gaps_wider_than_a_word_gap():
    boxes = [(0, 0, 100, H), (105, 0, 200, H), (300, 1, 360, H + 1), (370, 0, 420, H)]

    assert rows.cells(boxes, [0, 1, 2, 3]) == [[0, 1], [2, 3]]


def test_rows_group_lines_side_by_side_and_order_them_left_to_right():
    boxes = [(300, 2, 360, H + 2), (0, 0, 100, H), (0, PITCH, 100, PITCH + H)]

    assert rows.rows(boxes, [0, 1, 2]) == [[1, 0], [2]]


def test_a_receipt_row_is_one_row_of_two_cells_in_a_table_block():
    boxes = [(0, 0, 380, H)]
    for k in range(1, 5):
        boxes += [(0, k * PITCH, 150, k * PITCH + H), (300, k * PITCH + 2, 380, k * PITCH + H)]

    blocks = arrange(boxes)

    assert [row for block in blocks for row in block.rows] == [
        ((0,),),
        *(((2 * k - 1,), (2 * k,)) for k in range(1, 5)),
    ]
    assert blocks[-1].kind == "table"


# -- ruling lines and ruled tables ------------------------------------------------------------


def rules_of(image: Image.Image) -> Rules:
    bgr = __import__("numpy").asarray(image)[:, :, ::-1].copy()
    return find(bgr, lambda x, y: (x, y))


def test_the_rules_of_a_drawn_grid_are_found_and_text_and_blobs_are_not_rules():
    image = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(image)
    for y in (50, 150, 250, 350):
        draw.line((50, y, 650, y), fill="black", width=2)
    for x in (50, 250, 450, 650):
        draw.line((x, 50, x, 350), fill="black", width=2)
    draw.text((60, 420), "Some text that is not a rule", fill="black", font=render.latin_font(30))
    draw.rectangle((500, 450, 700, 560), fill="black")  # a photo or a logo: a blob, not a rule

    found = rules_of(image)

    # Letters' stems are short runs too: the tables step drops rules shorter than two lines.
    long = [r for r in (*found.horizontal, *found.vertical) if max(r[2] - r[0], r[3] - r[1]) > 60]
    assert sorted(long) == sorted(
        [(51.0, y, 653.0, y + 2) for y in (50.0, 150.0, 250.0, 350.0)]
        + [(x, 51.0, x + 2, 353.0) for x in (50.0, 250.0, 450.0, 650.0)]
    )
    assert not [r for r in (*found.horizontal, *found.vertical) if r[2] > 500 and r[1] > 440]
    assert rules_of(Image.new("RGB", (400, 300), "white")) == Rules()


def grid_rules(xs: list[float], ys: list[float]) -> Rules:
    return Rules(
        horizontal=tuple((xs[0], y - 1, xs[-1], y + 1) for y in ys),
        vertical=tuple((x - 1, ys[0], x + 1, ys[-1]) for x in xs),
    )


def test_a_ruled_grid_joins_a_wrapped_cell_and_reads_the_text_below_after_the_table():
    # year | rating | meaning: the meaning wraps over three lines in row 1, two in row 2
    xs, ys = [0.0, 100.0, 200.0, 600.0], [0.0, 40.0, 150.0, 230.0]
    cell = lambda x, y: (x + 10, y, x + 80, y + H)  # noqa: E731
    boxes = [cell(0, 10), cell(100, 10), (210, 10, 400, 10 + H)]  # the header
    boxes += [cell(0, 50), cell(100, 50)]
    boxes += [(210, 50 + k * PITCH, 590, 50 + k * PITCH + H) for k in range(3)]
    boxes += [cell(0, 160), cell(100, 160)]
    boxes += [(210, 160 + k * PITCH, 590, 160 + k * PITCH + H) for k in range(2)]
    boxes += [(0, 260 + k * PITCH, 600, 260 + k * PITCH + H) for k in range(4)]  # paragraph

    blocks = arrange(boxes, grid_rules(xs, ys))

    assert [block.kind for block in blocks] == ["table", "text"]
    assert blocks[0].rows == (
        ((0,), (1,), (2,)),
        ((3,), (4,), (5, 6, 7)),
        ((8,), (9,), (10, 11)),
    )
    assert blocks[1].lines == (12, 13, 14, 15)


def test_row_labels_printed_left_of_a_ruled_table_belong_to_its_rows():
    xs, ys = [200.0, 300.0, 400.0], [0.0, 10 + 5 * PITCH]
    boxes = []
    for k in range(5):
        top = 5 + k * PITCH
        boxes += [(0, top, 150, top + H), (210, top, 290, top + H), (310, top, 390, top + H)]

    (block,) = arrange(boxes, grid_rules(xs, ys))

    assert block.rows == tuple(((3 * k,), (3 * k + 1,), (3 * k + 2,)) for k in range(5))


def test_a_frame_with_a_divider_around_two_columns_of_prose_is_not_a_table():
    left, right = column(20, 420, 10, top=20), column(480, 880, 10, top=20)
    rules = grid_rules([0.0, 450.0, 900.0], [0.0, 30 + 10 * PITCH])

    blocks = arrange([*left, *right], rules)

    assert [block.kind for block in blocks] == ["text", "text"]
    assert order(blocks) == list(range(20))


def test_without_rules_an_items_second_line_stays_a_row_of_its_own():
    boxes = [
        (0, 0, 200, H),  # 1 M McChicken
        (300, 0, 360, H),  # 9.50
        (20, PITCH, 180, PITCH + H),  # 1 M Coke (indented)
        (0, 2 * PITCH, 200, 2 * PITCH + H),  # 1 McChicken
        (300, 2 * PITCH, 360, 2 * PITCH + H),  # 5.00
        (0, 3 * PITCH, 200, 3 * PITCH + H),  # Total
        (300, 3 * PITCH, 360, 3 * PITCH + H),  # 14.50
    ]

    (block,) = arrange(boxes)

    assert block.rows == (((0,), (1,)), ((2,),), ((3,), (4,)), ((5,), (6,)))


def test_is_table_wants_most_rows_to_have_several_cells():
    assert tables.is_table([((0,), (1,))] * 3)
    assert not tables.is_table([((0,), (1,))] * 2)
    assert not tables.is_table([((0,), (1,))] * 3 + [((2,),)] * 4)


# -- sidebars ---------------------------------------------------------------------------------


def test_a_body_beside_a_shorter_sidebar_on_the_same_rows_reads_body_first():
    body = column(0, 500, 12)
    sidebar = []
    for k in range(5):  # label and value, on the body's own rows
        sidebar += [(560, k * PITCH, 640, k * PITCH + H), (700, k * PITCH, 760, k * PITCH + H)]
    boxes = sorted(body + sidebar, key=lambda b: (b[1], b[0]))

    reading = [boxes[i] for i in order(arrange(boxes))]

    assert reading == body + sidebar


def test_a_receipts_address_above_its_prices_is_not_a_body_beside_a_sidebar():
    address = column(0, 300, 5)
    items = []
    for k in range(5, 10):
        items += [(0, k * PITCH, 200, k * PITCH + H), (400, k * PITCH, 460, k * PITCH + H)]
    boxes = address + items

    assert order(arrange(boxes)) == list(range(len(boxes)))


# -- real OCR: a rendered two-column page through the engine ----------------------------------

LEFT = [f"Left line {k} of the first column" for k in range(1, 7)]
RIGHT = [f"Right line {k} of the second column" for k in range(1, 7)]
HEADING = "A heading over both columns"


@pytest.fixture(scope="module")
def engine() -> Engine:
    """One real engine for this module's OCR test (it loads on first use)."""
    return Engine(Settings())


def two_column_page() -> bytes:
    """A heading over two columns whose lines share baselines, as on a two-column paper."""
    image = Image.new("RGB", (1500, 640), "white")
    draw = ImageDraw.Draw(image)
    font = render.latin_font(30)
    draw.text((60, 40), HEADING, fill="black", font=font)
    for k, (left, right) in enumerate(zip(LEFT, RIGHT, strict=True)):
        y = 140 + k * 60
        draw.text((60, y), left, fill="black", font=font)
        draw.text((800, y), right, fill="black", font=font)
    return render.encode(image, "PNG")


def squash(text: str) -> str:
    return "".join(text.split()).lower()


def test_real_ocr_of_a_two_column_page_reads_the_left_column_before_the_right(engine):
    settings = Settings()
    image = decode(two_column_page(), max_side=settings.max_side, max_pixels=settings.max_pixels)
    with engine.session() as models:
        found = pipeline.read(image, models)
    boxes = [hull(line.box) for line in found]
    engine_texts = [squash(line.text) for line in found]
    reading = [engine_texts[i] for i in order(arrange(boxes))]

    def position(texts: list[str], key: str) -> int:
        matches = [k for k, text in enumerate(texts) if key in text]
        assert len(matches) == 1, f"{key!r} not read once: {texts}"
        return matches[0]

    keys = ["heading", *(f"leftline{k}" for k in range(1, 7))]
    keys += [f"rightline{k}" for k in range(1, 7)]
    engine_positions = [position(engine_texts, key) for key in keys]
    assert engine_positions != sorted(engine_positions)  # top to bottom interleaves columns
    assert [position(reading, key) for key in keys] == list(range(len(keys)))
