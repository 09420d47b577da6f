"""Detect: strips bounded and covering the page, every line found once, seams and borders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from function import detect
from tests import render


def bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


@pytest.mark.parametrize("height, width", [(100, 100), (256, 1600), (2263, 1600), (5000, 300)])
def test_strips_cover_every_row_with_bounded_overlapping_runs(height, width):
    runs = detect.strips(height, width)

    assert runs[0][0] == 0 and runs[-1][1] == height
    size = max(detect.MIN_STRIP_HEIGHT, detect.STRIP_PIXELS // width)
    for (top, bottom), (next_top, _) in zip(runs, runs[1:], strict=False):
        assert next_top <= bottom - detect.OVERLAP  # neighbours share at least OVERLAP rows
        assert next_top > top
    assert all(bottom - top <= size for top, bottom in runs)


def hits(quads: list[np.ndarray], box: tuple[int, int, int, int]) -> int:
    """How many quads hold the centre of a drawn text box."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return sum(
        q[:, 0].min() <= cx <= q[:, 0].max() and q[:, 1].min() <= cy <= q[:, 1].max() for q in quads
    )


def test_every_line_is_found_once_across_seams_and_at_the_borders(models):
    # 1000 px wide: strips of 400 rows overlapping by 64. Lines every 36 px cross every seam,
    # the first touches the top border and the last the bottom one.
    lines = [f"Row {i:02d} seam test words" for i in range(40)]
    drawn = render.page(lines, size=(1000, 1432), font_size=20, origin=(20, 2))
    assert max(box[3] for box in drawn.lines.values()) > 1432 - 10

    quads = detect.find_lines(bgr(drawn.image), models.detector)

    assert len(quads) == len(lines)
    assert all(hits(quads, box) == 1 for box in drawn.lines.values())


def test_a_line_taller_than_the_overlap_is_joined_across_the_seam(models):
    image = Image.new("RGB", (1000, 900), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 330), "HEADLINE", fill="black", font=render.latin_font(150))
    box = draw.textbbox((40, 330), "HEADLINE", font=render.latin_font(150))
    assert box[3] - box[1] > detect.OVERLAP and box[1] < 400 < box[3]  # across the first seam

    quads = detect.find_lines(bgr(image), models.detector)

    assert len(quads) == 1 and hits(quads, box) == 1
    (quad,) = quads
    assert quad[:, 1].min() <= box[1] and quad[:, 1].max() >= box[3]


def test_quads_are_in_the_given_images_pixels_when_the_detector_sees_it_smaller(models):
    drawn = render.page(["Far right corner"], size=(3200, 800), font_size=60, origin=(2400, 700))
    assert max(drawn.image.size) > detect.DETECT_SIDE

    (quad,) = detect.find_lines(bgr(drawn.image), models.detector)

    left, top, right, bottom = drawn.lines["Far right corner"]
    assert abs(quad[:, 0].min() - left) < 20 and abs(quad[:, 0].max() - right) < 20
    assert abs(quad[:, 1].min() - top) < 20 and abs(quad[:, 1].max() - bottom) < 20


def test_an_image_that_is_one_line_is_read_whole():
    # A plate where nothing was found: the whole image.
    assert detect.single_line(24, 94, []).tolist() == [[0, 0], [93, 0], [93, 23], [0, 23]]
    # A line cut short, or in two pieces: in a small image, their rows across its whole width.
    pieces = [
        np.array([[40, 10], [90, 10], [90, 30], [40, 30]], dtype=np.float32),
        np.array([[120, 11], [150, 11], [150, 31], [120, 31]], dtype=np.float32),
    ]
    line = detect.single_line(44, 300, pieces)
    assert line.tolist() == [[0, 4.75], [299, 4.75], [299, 36.25], [0, 36.25]]
    # In a larger image, their hull, widened by a line height each side.
    line = detect.single_line(440, 3000, [p * 10 for p in pieces])
    assert line.tolist() == [[190, 47.5], [1710, 47.5], [1710, 362.5], [190, 362.5]]


def test_a_page_is_not_one_line():
    first = np.array([[10, 10], [500, 10], [500, 40], [10, 40]], dtype=np.float32)
    second = first + np.float32([0, 60])
    assert detect.single_line(300, 900, [first, second]) is None
    assert detect.single_line(300, 900, [first]) is None  # one short line on a tall page
    assert detect.single_line(2000, 1500, []) is None  # a blank page


STRIPED_PAGE = dict(lines=[f"Line {i}" for i in range(24)], size=(1000, 1300), font_size=28)


def recording(model, calls: list[bool]):
    """The real model, noting each run's keep_arena."""

    def detector(tensor, *, keep_arena=False):
        calls.append(keep_arena)
        return model(tensor, keep_arena=keep_arena)

    return detector


def test_the_detector_keeps_its_arena_between_strips_and_hands_it_back_after_the_last(models):
    page = render.page(**STRIPED_PAGE)
    calls: list[bool] = []
    detector = recording(models.detector, calls)

    quads = detect.find_lines(bgr(page.image), detector)

    runs = detect.strips(1300, 1000)
    assert len(runs) > 2 and calls == [True] * (len(runs) - 1) + [False]
    assert sum(hits(quads, box) == 1 for box in page.lines.values()) == len(page.lines)


def test_a_deadline_between_strips_still_hands_the_arena_back(models):
    page = render.page(**STRIPED_PAGE)
    calls: list[bool] = []
    detector = recording(models.detector, calls)

    def deadline():
        if len(calls) == 2:
            raise TimeoutError("the request's deadline")

    with pytest.raises(TimeoutError):
        detect.find_lines(bgr(page.image), detector, deadline)

    assert calls == [True, True, False]  # two strips kept it; a last, tiny run handed it back
