"""Lay out: recognised lines -> blocks in reading order, each read row by row, cell by cell.

    rules.find       the page's ruling lines (OpenCV morphology on the image the engine read)
    tables.ruled     ... the tables they enclose: each read as one block, wherever it sits
    columns.Page     the rest cut into columns and blocks (XY-cut), in reading order
    rows.rows/cells  a block's lines in rows, top to bottom; a row's cells split at wide gaps
    tables.table     a block whose rows have several cells is a table: wrapped cells joined

It sees only the lines' boxes (axis-aligned hulls of their quadrilaterals) and the rules; every
threshold is a multiple of the median line height, so nothing depends on the resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import rows, tables
from .boxes import Box, centre_y, hull, hull_of, line_height, normalised
from .columns import Page
from .rules import NONE, Rules, find

__all__ = ["Block", "Box", "Rules", "arrange", "find", "hull"]

Row = tables.Row


@dataclass(frozen=True)
class Block:
    kind: str  # "text" or "table"
    rows: tuple[Row, ...]  # top to bottom; each row its cells left to right (line indices)
    box: Box  # hull of its lines

    @property
    def lines(self) -> tuple[int, ...]:
        """Its lines in reading order: row by row, cell by cell."""
        return tuple(i for row in self.rows for cell in row for i in cell)


def arrange(boxes: Sequence[Box], rules: Rules = NONE) -> list[Block]:
    """Blocks in reading order; every input index appears in exactly one block."""
    if not boxes:
        return []
    boxes = [normalised(box) for box in boxes]
    height = line_height(boxes)
    everything = list(range(len(boxes)))
    # A ruled table stands in the page as one box, so its columns are never the page's.
    ruled: dict[int, tuple[list[int], Rules]] = {}  # stand-in index -> its lines and rules
    taken: set[int] = set()
    for region, grid in tables.ruled(boxes, rules, height):
        lines = [i for i in tables.inside(boxes, everything, region) if i not in taken]
        if not lines or tables.holds_prose(boxes, lines, grid, height):
            continue  # a frame around text, not a table
        if tables.is_table(tables.table(boxes, lines, height, grid)):
            ruled[len(boxes) + len(ruled)] = (lines, grid)
            taken.update(lines)
    stand_ins = [*boxes, *(hull_of(boxes[i] for i in lines) for lines, _ in ruled.values())]
    rest = [i for i in range(len(stand_ins)) if i not in taken]
    blocks = []
    for region in Page(stand_ins).read(rest):
        for part in _around_tables(stand_ins, region, ruled):
            if part[0] in ruled:
                lines, grid = ruled[part[0]]
                blocks.append(_block("table", tables.table(boxes, lines, height, grid), boxes))
            else:
                blocks.append(_text_or_table(boxes, part, height))
    return blocks


def _around_tables(boxes: list[Box], region: list[int], ruled: dict) -> list[list[int]]:
    """A block's lines above each table in it, the table, then the lines below (and beside)."""
    parts: list[list[int]] = []
    text = sorted((i for i in region if i not in ruled), key=lambda i: centre_y(boxes[i]))
    for t in sorted((i for i in region if i in ruled), key=lambda i: boxes[i][1]):
        above = [i for i in text if centre_y(boxes[i]) < boxes[t][1]]
        text = [i for i in text if i not in above]
        parts += [above, [t]] if above else [[t]]
    return [*parts, text] if text else parts


def _text_or_table(boxes: list[Box], lines: list[int], height: float) -> Block:
    found = tables.table(boxes, lines, height)
    if tables.is_table(found):
        return _block("table", found, boxes)
    plain = [
        tuple(tuple(cell) for cell in rows.cells(boxes, row)) for row in rows.rows(boxes, lines)
    ]
    return _block("text", plain, boxes)


def _block(kind: str, found: list[Row], boxes: list[Box]) -> Block:
    box = hull_of(boxes[i] for row in found for cell in row for i in cell)
    return Block(kind=kind, rows=tuple(found), box=box)
