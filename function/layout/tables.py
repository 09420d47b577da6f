"""Tables: regions enclosed by ruling lines, and rows of cells, a wrapped cell kept whole.

Where a table is: a group of rules that meet (horizontal and vertical, with a rule inside the
group's hull, which a frame around a page or a paragraph does not have) encloses a ruled table;
its lines are read as one block wherever they sit, so the columns of a table are never mistaken
for the columns of a page, and what is printed under it comes after it. A block without rules
is a table when most of its rows have several cells (a price list, a bank statement).

Rows of cells: the rows of `rows.rows`, split into cells by `rows.cells` and by vertical rules.
In a ruled grid (`GRID` horizontal rules or more) a row continues the one above it (its
lines are the wrapped lines of that row's cells) when no rule lies between them and it has no
cell in the first column. Without rules, a wrapped line is not told from an item's second line
(a receipt's "1 M Coke" under "1 M McChicken 9.50"), so each stays a row of its own, in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import rows as rows_
from .boxes import Box, centre_x, centre_y, hull_of, overlaps_x
from .rules import NONE, Rules

GRID = 4  # fewest horizontal rules (at distinct heights) that make a table a ruled grid
RULE = 2.0  # shortest rule, in line heights: a letter's stem or a dash is shorter
NEAR = 0.5  # rules this many line heights apart meet (a grid drawn with small gaps)
TABLE_ROWS = 3  # fewest rows of two cells or more in a table without rules ...
TABLE_SHARE = 0.5  # ... and at least this share of its rows
PROSE = 8.0  # narrowest line of prose, in line heights ...
FRAMED = 6  # ... and the most of them stacked with no rule between in one cell of a table: more
# is a page or a column of text in a frame (a transcript's page, a sidebar's box)
STACKED = 1.6  # widest gap between two stacked lines, in line heights
FIRST_COLUMN = 1.0  # a row starting this many line heights right of the table's left edge
# has no cell in the first column

Row = tuple[tuple[int, ...], ...]  # cells left to right, each the line indices of one cell


def ruled(boxes: Sequence[Box], rules: Rules, height: float) -> list[tuple[Box, Rules]]:
    """The hulls of ruled tables on the page, each with the rules that make it."""
    found = []
    long = [r for r in (*rules.horizontal, *rules.vertical) if _length(r) >= RULE * height]
    for group in _groups(long, NEAR * height):
        horizontal = [r for r in group if r[2] - r[0] >= r[3] - r[1]]
        vertical = [r for r in group if r[2] - r[0] < r[3] - r[1]]
        if not horizontal or not vertical:
            continue
        box = hull_of(group)
        inside = [
            r for r in vertical if box[0] + NEAR * height < r[0] and r[2] < box[2] - NEAR * height
        ]
        if inside:  # a column divider: a frame or an underline has none
            found.append((box, Rules(tuple(horizontal), tuple(vertical))))
    return found


def _length(rule: Box) -> float:
    return max(rule[2] - rule[0], rule[3] - rule[1])


def _groups(rules: list[Box], near: float) -> list[list[Box]]:
    """Rules that touch (within `near`), transitively: one group per grid."""
    parent = list(range(len(rules)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, ra in enumerate(rules):
        for b in range(a + 1, len(rules)):
            rb = rules[b]
            if (
                ra[0] - near <= rb[2]
                and rb[0] - near <= ra[2]
                and ra[1] - near <= rb[3]
                and rb[1] - near <= ra[3]
            ):
                parent[root(a)] = root(b)
    groups: dict[int, list[Box]] = {}
    for k, rule in enumerate(rules):
        groups.setdefault(root(k), []).append(rule)
    return list(groups.values())


def holds_prose(boxes: Sequence[Box], lines: Sequence[int], rules: Rules, height: float) -> bool:
    """Whether `FRAMED` prose lines stand one under another among `lines`, no rule between."""
    wide = sorted(
        (i for i in lines if boxes[i][2] - boxes[i][0] >= PROSE * height), key=lambda i: boxes[i][1]
    )
    run: dict[int, int] = {}
    for k, i in enumerate(wide):
        run[i] = 1
        for j in reversed(wide[:k]):
            if boxes[i][1] - boxes[j][1] > (STACKED + 4) * height:
                break  # sorted by top: lines further up cannot be right above this one
            gap = boxes[i][1] - boxes[j][3]
            if (
                0 <= gap < STACKED * height
                and overlaps_x(boxes[i], boxes[j])
                and not any(
                    boxes[j][3] - 1 <= centre_y(r) <= boxes[i][1] + 1 and overlaps_x(r, boxes[i])
                    for r in rules.horizontal
                )
            ):
                run[i] = max(run[i], run[j] + 1)
        if run[i] >= FRAMED:
            return True
    return False


def inside(boxes: Sequence[Box], lines: Sequence[int], region: Box) -> list[int]:
    """The lines whose centre lies in `region`, and the column of row labels beside it.

    Row labels are often printed left of a table's rules (a financial table's "Net sales"):
    a column beside the region, between its top and bottom, with a line on at least half of
    the region's rows, belongs to the table.
    """
    left, top, right, bottom = region
    found = [
        i
        for i in lines
        if left <= centre_x(boxes[i]) <= right and top <= centre_y(boxes[i]) <= bottom
    ]
    table_rows = rows_.rows(boxes, found)
    for beside in (lambda b: b[2] <= left, lambda b: b[0] >= right):
        outside = [i for i in lines if top <= centre_y(boxes[i]) <= bottom and beside(boxes[i])]
        partners = [
            j for j in outside if any(rows_.same_row(boxes[j], boxes[row[0]]) for row in table_rows)
        ]
        if table_rows and len(partners) >= 0.5 * len(table_rows):
            column = hull_of(boxes[j] for j in partners)
            found += [j for j in outside if overlaps_x(boxes[j], column)]
    return found


def table(
    boxes: Sequence[Box], lines: Sequence[int], height: float, rules: Rules = NONE
) -> list[Row]:
    """The rows of cells of `lines` read as a table, wrapped cells joined, top to bottom."""
    found: list[list[list[int]]] = []
    left_edge = min(boxes[i][0] for i in lines)
    grid = _distinct(rules.horizontal, height) >= GRID
    for row in rows_.rows(boxes, lines):
        cells = _split_at_rules(boxes, rows_.cells(boxes, row), rules.vertical)
        new = []
        for cell in cells:
            above = _above(boxes, cell, found[-1]) if found and grid else None
            if above is not None and _continues(boxes, cell, above, rules, left_edge, height):
                above.extend(cell)
            else:
                new.append(cell)
        if new:
            found.append(new)
    return [tuple(tuple(cell) for cell in row) for row in found]


def is_table(table: list[Row]) -> bool:
    """Whether rows read as a table look like one: most rows have several cells."""
    several = sum(len(row) >= 2 for row in table)
    return several >= TABLE_ROWS and several >= TABLE_SHARE * len(table)


def _distinct(horizontal: Sequence[Box], height: float) -> int:
    """How many distinct heights the horizontal rules are at (a double rule counts once)."""
    ys = sorted(centre_y(r) for r in horizontal)
    return sum(k == 0 or y - ys[k - 1] > NEAR * height for k, y in enumerate(ys))


def _split_at_rules(
    boxes: Sequence[Box], cells: list[list[int]], vertical: Sequence[Box]
) -> list[list[int]]:
    """Cells split again where a vertical rule runs between two of their lines."""
    split = []
    for cell in cells:
        split.append([cell[0]])
        for a, b in zip(cell, cell[1:], strict=False):
            top = min(boxes[a][1], boxes[b][1])
            bottom = max(boxes[a][3], boxes[b][3])
            if any(
                boxes[a][2] - 1 <= centre_x(r) <= boxes[b][0] + 1 and r[1] < bottom and top < r[3]
                for r in vertical
            ):
                split.append([b])
            else:
                split[-1].append(b)
    return split


def _above(boxes: Sequence[Box], cell: list[int], row: list[list[int]]) -> list[int] | None:
    """The cell of `row` that overlaps `cell` horizontally the most, if any."""
    box = hull_of(boxes[i] for i in cell)
    best, most = None, 0.0
    for mine in row:
        other = hull_of(boxes[j] for j in mine)
        overlap = min(box[2], other[2]) - max(box[0], other[0])
        if overlap > most:
            best, most = mine, overlap
    return best


def _continues(
    boxes: Sequence[Box],
    cell: list[int],
    above: list[int],
    rules: Rules,
    left_edge: float,
    height: float,
) -> bool:
    """Whether, in a ruled grid, `cell` holds wrapped lines of the cell `above` it: no rule
    between them, and not in the first column (a cell there starts a row)."""
    box = hull_of(boxes[i] for i in cell)
    bottom = max(boxes[i][3] for i in above)
    ruled_between = any(
        bottom - NEAR * height <= centre_y(r) <= box[1] + NEAR * height
        and r[0] < box[2]
        and box[0] < r[2]
        for r in rules.horizontal
    )
    return not ruled_between and box[0] >= left_edge + FIRST_COLUMN * height
