"""Axis-aligned boxes of lines, and the few measures every layout step uses."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

Box = tuple[float, float, float, float]  # left, top, right, bottom, in image pixels


def hull(points: Iterable[Sequence[float]]) -> Box:
    """The axis-aligned hull of a line's corner points."""
    points = list(points)
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def normalised(box: Box) -> Box:
    """Corners in order, NaN as 0: the engine's boxes are not always well formed."""
    left, top, right, bottom = (float(v) if v == v else 0.0 for v in box)
    return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))


def hull_of(boxes: Iterable[Box]) -> Box:
    boxes = list(boxes)
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def line_height(boxes: Sequence[Box]) -> float:
    """The median line height: every threshold is a multiple of it, whatever the resolution."""
    heights = [b[3] - b[1] for b in boxes if b[3] > b[1]]
    return statistics.median(heights) if heights else 1.0


def centre_y(box: Box) -> float:
    return (box[1] + box[3]) / 2


def centre_x(box: Box) -> float:
    return (box[0] + box[2]) / 2


def apart(a: Box, b: Box) -> float:
    """The horizontal distance between two boxes (0 if they overlap horizontally)."""
    return max(b[0] - a[2], a[0] - b[2], 0.0)


def overlaps_x(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2]
