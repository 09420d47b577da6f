"""Columns and blocks: the page cut into blocks, in the order the page reads.

The engine returns lines top to bottom, left to right across the whole page, which interleaves
the columns of a two-column paper or a deposition transcript. This is a recursive XY-cut on the
lines' boxes that looks for columns before rows. A region (at first the whole page) is cut by
the first of these that applies, and each part is cut again:

1. A vertical gap of `SECTION` line heights across the whole region ends a section (a page
   header, a footer, an article under another).
2. A *gutter*, an empty vertical strip at least `GUTTER` line heights wide, splits it into
   columns, read left column first, when the sides are columns of text and not the cells of a
   table, a form or a receipt. Both sides must be lines stacked one under another, and one of:
   a paragraph (`PARAGRAPH_LINES` stacked prose lines) on one side, lines side by side with
   the other's but on rows of their own (columns of different line pitch); or paragraphs on
   both sides (pages side by side, on a common baseline grid); or, left of paragraphs, a margin
   of `MARGIN` short labels or more, one per line (a transcript's line numbers); or a paragraph
   on one side that runs on with nothing beside it (a body beside a shorter sidebar). Of
   several gutters, the one with the most lines on its smaller side wins (the page's main
   columns before a margin).
   A few lines may cross the gutter: one with column lines beside it, or right above and below
   it, is two lines the detector ran together and stays in the column where it starts; any
   other spans the columns (a heading) and the region is cut above and below it, so a heading
   comes before the columns it heads.
3. A vertical gap across the region of `PARAGRAPH` line heights, and `LEADING` more than the
   page's usual gap between lines (1.5- or double-spaced pages), ends a block.
4. A region with none of these is one block (`rows` and `tables` then read it row by row).

All thresholds are multiples of the median line height, so the result does not depend on the
image's resolution. Boxes are axis-aligned hulls; the row tests allow for a slight skew.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from .boxes import Box

GUTTER = 0.9  # narrowest column gap, in line heights
SECTION = 2.0  # narrowest vertical gap across a whole region that ends a section, in line heights
PARAGRAPH = 0.8  # narrowest vertical gap between blocks, in line heights, at least ...
LEADING = 0.5  # ... this much more than the page's usual gap between lines
STACKED = 1.6  # widest gap between the lines of one column (double spacing), in line heights
PROSE = 8.0  # narrowest line of prose, in line heights
PARAGRAPH_LINES = 4  # fewest stacked prose lines that show a column of text, not a table cell
COLUMN = 3  # fewest lines on either side of a gutter
LABEL = 2.5  # widest line-number label of a margin column, in line heights
MARGIN = 10  # fewest labels in a margin of line numbers: fewer are a list's markers, read with
# their items
CROSSING = 8  # most lines that may cross a gutter (headings, lines run together)
SAME_ROW = 0.15  # largest offset between the centres of two lines of one row, in line heights
SKEW = 0.01  # tolerated drift of a row's centre per pixel across (0.6 degrees) ...
MAX_DRIFT = 0.5  # ... up to this many line heights, less than the pitch of the tightest rows
ALIGNED = 0.6  # share of lines that makes a side stacked, side by side or on shared rows


class Page:
    """The boxes of one page and the line height every threshold is relative to."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = boxes
        heights = [b[3] - b[1] for b in boxes if b[3] > b[1]]
        self.height = statistics.median(heights) if heights else 1.0
        # Lines 1.5 or 2 lines apart (Chinese documents, legal filings) are not each a block.
        self.paragraph = max(PARAGRAPH, self._leading() + LEADING)
        # Each line's nearest neighbour on its row to the left and to the right (or None).
        self._left: list[int | None] = [None] * len(boxes)
        self._right: list[int | None] = [None] * len(boxes)
        centres = sorted((self._centre(i), i) for i in range(len(boxes)))
        keys = [c for c, _i in centres]
        for c, i in centres:
            start, stop = bisect_left(keys, c - self.height), bisect_right(keys, c + self.height)
            row = [j for _c, j in centres[start:stop] if j != i and self._overlap_rows(i, j)]
            lefts = [j for j in row if self._centre_x(j) < self._centre_x(i)]
            rights = [j for j in row if self._centre_x(j) > self._centre_x(i)]
            if lefts:
                self._left[i] = max(lefts, key=self._centre_x)
            if rights:
                self._right[i] = min(rights, key=self._centre_x)

    def _leading(self) -> float:
        """The median gap between a line and the next line under it, in line heights."""
        boxes = self.boxes
        order = sorted(range(len(boxes)), key=lambda i: boxes[i][1])
        gaps = []
        for k, i in enumerate(order):
            for j in order[k + 1 :]:
                if boxes[j][1] > boxes[i][3] + STACKED * self.height:
                    break
                below = boxes[j][1] >= (boxes[i][1] + boxes[i][3]) / 2
                if below and boxes[j][0] < boxes[i][2] and boxes[i][0] < boxes[j][2]:
                    gaps.append(max(0.0, boxes[j][1] - boxes[i][3]) / self.height)
                    break
        return statistics.median(gaps) if gaps else 0.0

    def read(self, region: list[int]) -> list[list[int]]:
        """The blocks of `region` in reading order, each a set of lines (iteratively: pages can
        have 1000s of lines)."""
        blocks: list[list[int]] = []
        pending = [region]
        while pending:
            region = pending.pop()
            parts = None
            if len(region) > 1:
                for split in (self._sections, self._columns, self._blocks):
                    if parts := split(region):  # two or more parts, each smaller than region
                        break
            if parts:
                pending.extend(reversed(parts))
            else:
                blocks.append(region)
        return blocks

    # -- step 2: columns, possibly crossed by a few lines ------------------------------------

    def _columns(self, region: list[int]) -> list[list[int]] | None:
        """Columns left to right, or bands around spanning lines, or None."""
        best, seen = None, set()
        for gutter, left, right, crossing in self._gutters(region):
            left, right, across = self._sides(gutter, left, right, crossing)
            if (split := (tuple(left), tuple(right))) in seen:
                continue
            seen.add(split)
            if len(across) > min(len(left), len(right)) // 2:
                continue  # the strip is between words of many lines, not between columns
            if not self._are_columns(left, right):
                continue
            key = (-min(len(left), len(right)), len(across))
            if best is None or key < best[0]:
                best = (key, left, right, across)
        if best is None:
            return None
        _key, left, right, across = best
        # A line across the gutter with column lines beside it, or right above and below it, is
        # two columns' lines that the detector ran together: it stays in the column where it
        # starts. Any other spans the columns (a heading, a footer): they are read around it.
        spanning = []
        for i in across:
            if self._among(i, [*left, *right]):
                left.append(i)
            else:
                spanning.append(i)
        if not spanning:
            return [left, right]
        return self._cut_around(region, spanning)

    def _among(self, i: int, lines: list[int]) -> bool:
        """Whether line i has one of `lines` beside it, or both right above and right below."""
        box, close = self.boxes[i], self.paragraph * self.height
        above = below = False
        for j in lines:
            other = self.boxes[j]
            if self._overlap_rows(i, j):
                return True
            if other[0] < box[2] and box[0] < other[2]:
                above |= 0 <= box[1] - other[3] < close
                below |= 0 <= other[1] - box[3] < close
        return above and below

    def _sides(
        self, gutter: tuple[float, float], left: list[int], right: list[int], crossing: list[int]
    ) -> tuple[list[int], list[int], list[int]]:
        """Lines that only reach into the gutter join their side; the rest are across it."""
        x0, x1 = gutter
        reach = GUTTER * self.height
        left, right, across = list(left), list(right), []
        for i in crossing:
            box = self.boxes[i]
            into_left, into_right = x0 - box[0], box[2] - x1
            if min(into_left, into_right) >= reach:
                across.append(i)
            elif into_left >= into_right:
                left.append(i)
            else:
                right.append(i)
        return left, right, across

    def _centre_x(self, i: int) -> float:
        return (self.boxes[i][0] + self.boxes[i][2]) / 2

    def _overlap_rows(self, i: int, j: int) -> bool:
        """Whether lines i and j overlap by half the smaller one's height or more."""
        a, b = self.boxes[i], self.boxes[j]
        overlap = min(a[3], b[3]) - max(a[1], b[1])
        return overlap > 0 and overlap >= 0.5 * min(a[3] - a[1], b[3] - b[1])

    def _gutters(
        self, region: list[int]
    ) -> Iterable[tuple[tuple[float, float], list[int], list[int], list[int]]]:
        """Empty or nearly empty vertical strips: (x range, lines left, right and across)."""
        boxes = self.boxes
        # Sweep the x axis: which lines cover each interval between consecutive box edges.
        wide = [i for i in region if boxes[i][2] > boxes[i][0]]  # zero width covers nothing
        events = sorted([(boxes[i][0], 1, i) for i in wide] + [(boxes[i][2], 0, i) for i in wide])
        strips: list[tuple[float, float, frozenset[int]]] = []
        active: set[int] = set()
        for k, (x, starts, i) in enumerate(events):
            if starts:
                active.add(i)
            else:
                active.discard(i)
            if k + 1 < len(events) and events[k + 1][0] > x:
                strips.append((x, events[k + 1][0], frozenset(active)))
        seen = set()
        for allowed in range(CROSSING + 1):
            runs: list[list[tuple[float, float, frozenset[int]]]] = [[]]
            for strip in strips:
                if len(strip[2]) <= allowed:
                    runs[-1].append(strip)
                elif runs[-1]:
                    runs.append([])
            for run in runs:
                if not run or run[-1][1] - run[0][0] < GUTTER * self.height:
                    continue
                x0, x1 = run[0][0], run[-1][1]
                if (x0, x1) in seen:
                    continue
                seen.add((x0, x1))
                left = [i for i in region if boxes[i][2] <= x0]
                right = [i for i in region if boxes[i][0] >= x1]
                if left and right:
                    sides = {*left, *right}
                    yield (x0, x1), left, right, [i for i in region if i not in sides]

    def _are_columns(self, left: list[int], right: list[int]) -> bool:
        """Whether two sides of a gutter are columns (True) or the cells of rows (False)."""
        if min(len(left), len(right)) < COLUMN:
            return False  # too few lines to tell a column from a few fields
        facing = self._facing(left, toward=1), self._facing(right, toward=-1)
        fewer, more = sorted(facing, key=len)
        # Side by side but on rows of their own, with a paragraph of prose on one side:
        # independent columns (a receipt whose item names and prices alternate in rows is not
        # side by side; a form has no paragraphs). Or paragraphs on both sides on a common
        # baseline grid: pages side by side. Or a margin of line numbers beside paragraphs. Or a
        # body and a sidebar: a paragraph that runs on past the other side, with nothing beside
        # it (a table's or a receipt's long labels have their cells beside them).
        paragraphs = self._paragraph(left), self._paragraph(right)
        columns = (
            self._runs_alone(left, right)
            or self._runs_alone(right, left)
            or (
                any(paragraphs)
                and self._partnered(fewer, more) < ALIGNED * len(fewer)
                and self._beside(*facing) >= ALIGNED * (len(fewer) + len(more))
            )
            or all(paragraphs)
            or (
                len(left) >= max(MARGIN, ALIGNED * len(right))
                and all(self._width(i) <= LABEL for i in left)
                and paragraphs[1]
            )
        )
        # Either way each side must be lines stacked one under the other, not fields scattered
        # over a form or a few lone lines.
        return columns and self._stacked(left) and self._stacked(right)

    def _runs_alone(self, body: list[int], other: list[int]) -> bool:
        """Whether a paragraph of `body` runs beside `other` and on below it, `PARAGRAPH_LINES`
        of its lines under all of `other` (a body beside a shorter sidebar; not a list's text
        beside its numbers, nor a receipt's address above its prices)."""
        bottom = max(self.boxes[j][3] for j in other)
        # The run ending at each line: (its lines below `other`, whether one is beside it)
        run: dict[int, tuple[int, bool]] = {}
        for i, above in self._stacked_prose(body):
            below, beside = max((run[j] for j in above), default=(0, False))
            if self.boxes[i][1] >= bottom:
                run[i] = (below + 1, beside)
            else:
                run[i] = (0, True)  # a run below `other` starts under a line beside it
            if run[i][0] >= PARAGRAPH_LINES and run[i][1]:
                return True
        return False

    def _beside(self, left: list[int], right: list[int]) -> int:
        """How many lines of either side overlap a line of the other by a quarter of a line."""
        count = 0
        for side, other in ((left, right), (right, left)):
            tops = sorted((self.boxes[j][1], j) for j in other)
            keys = [t for t, _j in tops]
            for i in side:
                box = self.boxes[i]
                # Lines of the other side starting above this one's bottom; the tallest line
                # starts at most a page height above, so scan back from there.
                candidates = tops[: bisect_right(keys, box[3])]
                count += any(
                    min(box[3], self.boxes[j][3]) - max(box[1], self.boxes[j][1])
                    >= 0.25 * min(box[3] - box[1], self.boxes[j][3] - self.boxes[j][1])
                    for _t, j in reversed(candidates)
                )
        return count

    def _facing(self, lines: list[int], toward: int) -> list[int]:
        """The lines with none of `lines` beside them toward the gutter (+1 right, -1 left).

        Only these face the other side: a table's far cells are compared with the near ones
        of their own row, not across the whole table, where a skew would misalign them.
        """
        beside = self._right if toward > 0 else self._left
        members = set(lines)
        return [i for i in lines if beside[i] not in members]

    def _stacked(self, lines: list[int]) -> bool:
        """Whether most of `lines` sit right under or over another of them."""
        boxes = self.boxes
        order = sorted(lines, key=lambda i: boxes[i][1])
        stacked = set()
        for k, i in enumerate(order):
            for j in order[k + 1 :]:
                if boxes[j][1] - boxes[i][3] >= STACKED * self.height:
                    break
                if boxes[j][0] < boxes[i][2] and boxes[i][0] < boxes[j][2]:
                    stacked.update((i, j))
        return len(stacked) >= ALIGNED * len(lines)

    def _partnered(self, lines: list[int], others: list[int]) -> int:
        """How many of `lines` share a row with one of `others`."""
        centres = sorted((self._centre(j), j) for j in others)
        keys = [c for c, _j in centres]
        reach = MAX_DRIFT * self.height
        count = 0
        for i in lines:
            c = self._centre(i)
            start, stop = bisect_left(keys, c - reach), bisect_right(keys, c + reach)
            count += self._has_row_partner(i, [j for _c, j in centres[start:stop]])
        return count

    def _centre(self, i: int) -> float:
        return (self.boxes[i][1] + self.boxes[i][3]) / 2

    def _has_row_partner(self, i: int, others: list[int]) -> bool:
        """Whether one of `others` shares a row with line `i` (a small skew allowed)."""
        a = self.boxes[i]
        centre = (a[1] + a[3]) / 2
        for j in others:
            b = self.boxes[j]
            drift = min(SAME_ROW + SKEW * self._apart(i, j) / self.height, MAX_DRIFT) * self.height
            if abs((b[1] + b[3]) / 2 - centre) <= drift:
                return True
        return False

    def _width(self, i: int) -> float:
        return (self.boxes[i][2] - self.boxes[i][0]) / self.height

    def _paragraph(self, lines: list[int]) -> bool:
        """Whether `PARAGRAPH_LINES` prose lines stand one right under another among `lines`.

        Wrapped text in a table cell or a form field is shorter than that.
        """
        run: dict[int, int] = {}  # the longest run of stacked prose lines ending at each line
        for i, above in self._stacked_prose(lines):
            run[i] = 1 + max((run[j] for j in above), default=0)
            if run[i] >= PARAGRAPH_LINES:
                return True
        return False

    def _stacked_prose(self, lines: list[int]) -> Iterable[tuple[int, list[int]]]:
        """Each prose line of `lines`, top to bottom, with those of them right above it."""
        boxes, close = self.boxes, STACKED * self.height
        wide = sorted((i for i in lines if self._width(i) >= PROSE), key=lambda i: boxes[i][1])
        for k, i in enumerate(wide):
            above = []
            for j in reversed(wide[:k]):
                if boxes[i][1] - boxes[j][1] > close + 4 * self.height:
                    break  # sorted by top: lines further up cannot be right above this one
                if 0 <= boxes[i][1] - boxes[j][3] < close and (
                    boxes[j][0] < boxes[i][2] and boxes[i][0] < boxes[j][2]
                ):
                    above.append(j)
            yield i, above

    def _cut_around(self, region: list[int], spanning: list[int]) -> list[list[int]] | None:
        """Bands above, beside and below the spanning lines, top to bottom."""
        boxes = self.boxes
        spans = sorted((boxes[i][1], boxes[i][3]) for i in spanning)
        is_spanning = set(spanning)
        merged: list[list[float]] = []
        for top, bottom in spans:
            if merged and top - merged[-1][1] < self.paragraph * self.height:  # one paragraph
                merged[-1][1] = max(merged[-1][1], bottom)
            else:
                merged.append([top, bottom])
        # Band 2k+1 is the k-th spanning run; 2k the space above it.
        bands: list[list[int]] = [[] for _ in range(2 * len(merged) + 1)]
        for i in region:
            centre = (boxes[i][1] + boxes[i][3]) / 2
            band = 2 * len(merged)
            for k, (top, bottom) in enumerate(merged):
                if i in is_spanning and top <= boxes[i][1] <= bottom or top <= centre <= bottom:
                    band = 2 * k + 1
                    break
                if centre < top:
                    band = 2 * k
                    break
            bands[band].append(i)
        parts = [band for band in bands if band]
        return parts if len(parts) > 1 else None

    # -- steps 1 and 3: bands separated by a vertical gap across the region ------------------

    def _sections(self, region: list[int]) -> list[list[int]] | None:
        return self._bands(region, SECTION)

    def _blocks(self, region: list[int]) -> list[list[int]] | None:
        return self._bands(region, self.paragraph)

    def _bands(self, region: list[int], gap: float) -> list[list[int]] | None:
        """The region cut where no line covers `gap` line heights of height, top to bottom."""
        boxes = self.boxes
        order = sorted(region, key=lambda i: boxes[i][1])
        parts = [[order[0]]]
        bottom = boxes[order[0]][3]
        for i in order[1:]:
            if boxes[i][1] - bottom >= gap * self.height:
                parts.append([])
            parts[-1].append(i)
            bottom = max(bottom, boxes[i][3])
        return parts if len(parts) > 1 else None

    def _apart(self, i: int, j: int) -> float:
        """The horizontal distance between two lines (0 if they overlap horizontally)."""
        a, b = self.boxes[i], self.boxes[j]
        return max(b[0] - a[2], a[0] - b[2], 0.0)
