"""Rows and cells: lines side by side on one row, and the gaps that separate a row's cells.

A row is the lines whose vertical centres lie within ~half a line of each other (a slight skew
allowed across the page). Within a row, a gap wider than `CELL_GAP` line heights separates two
cells (an item and its price, two columns of a table): the gaps between a line's own words are a
third of a line height or less, and the detector already joins words that close into one box,
so two boxes on one row closer than `CELL_GAP` are one phrase the detector split.
"""

from __future__ import annotations

from collections.abc import Sequence

from .boxes import Box, apart, centre_y

CELL_GAP = 0.6  # narrowest gap between two cells of a row, in line heights
SKEW = 0.01  # tolerated drift of a row's centre per pixel across (0.6 degrees) ...
ROW_DRIFT = 0.4  # ... on top of this offset between the centres of one row's lines ...
MAX_DRIFT = 0.6  # ... up to this, in the smaller line's heights: less than the tightest pitch

Row = list[list[int]]  # cells left to right, each a list of line indices left to right


def rows(boxes: Sequence[Box], lines: Sequence[int]) -> list[list[int]]:
    """`lines` grouped into rows, top to bottom, each row left to right."""
    found: list[list[int]] = []
    for i in sorted(lines, key=lambda i: centre_y(boxes[i])):
        if found and same_row(
            boxes[i], boxes[min(found[-1], key=lambda j: apart(boxes[i], boxes[j]))]
        ):
            found[-1].append(i)
        else:
            found.append([i])
    return [sorted(row, key=lambda i: boxes[i][0]) for row in found]


def same_row(a: Box, b: Box) -> bool:
    """Whether two lines are on one row: their centres within ~half a line of each other.

    Loose enough for a bigger font on the row or a label a little off its amount; tight enough
    that a drop capital or the next row of a dense table is not on it.
    """
    height = min(a[3] - a[1], b[3] - b[1])
    drift = min(ROW_DRIFT * height + SKEW * apart(a, b), MAX_DRIFT * height)
    return abs(centre_y(a) - centre_y(b)) <= drift


def cells(boxes: Sequence[Box], row: Sequence[int]) -> Row:
    """A row's lines (left to right) split into cells at gaps wider than `CELL_GAP`."""
    found: Row = []
    for i in row:
        if found:
            last = boxes[found[-1][-1]]
            height = min(last[3] - last[1], boxes[i][3] - boxes[i][1])
            if boxes[i][0] - last[2] < CELL_GAP * height:
                found[-1].append(i)
                continue
        found.append([i])
    return found
