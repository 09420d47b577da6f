"""Detect: where the text lines are, found by the DB detector on bounded horizontal strips.

The detector sees the page at DETECT_SIDE px at most (lines are found as well as at full size,
for a fraction of the CPU); the recogniser then cuts each line from the larger decoded image,
where word gaps and small print are still sharp.

The detector's activations cost about 120 bytes per input pixel, so a whole 1600-px page costs
over 200 MB, and a larger one more. Run on full-width strips of at most STRIP_PIXELS, with
OVERLAP px shared between neighbours, it costs the same for every page. A line is kept from a
strip that holds it whole; a line taller than the overlap (a big heading) is cut in every strip
that sees it, and its pieces are joined across the seam.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

from .engine import Model

Quad = np.ndarray  # (4, 2) float32: top-left, top-right, bottom-right, bottom-left

DETECT_SIDE = 1600
STRIP_PIXELS = 400_000
MIN_STRIP_HEIGHT = 256
OVERLAP = 64
_EDGE = 2  # a box this close to a strip's inner edge was cut by it

# rapidocr's own detector settings (its config.yaml).
_postprocess = DBPostProcess(
    thresh=0.3,
    box_thresh=0.5,
    max_candidates=1000,
    unclip_ratio=1.6,
    use_dilation=True,
    score_mode="fast",
)


def strips(height: int, width: int) -> list[tuple[int, int]]:
    """(top, bottom) rows of each detector run: full width, overlapping, covering every row."""
    size = max(MIN_STRIP_HEIGHT, STRIP_PIXELS // max(width, 1))
    if height <= size:
        return [(0, height)]
    step = size - OVERLAP
    tops = list(range(0, height - size, step)) + [height - size]
    return [(top, top + size) for top in tops]


def find_lines(
    bgr: np.ndarray, detector: Model, check: Callable[[], None] = lambda: None
) -> list[Quad]:
    """Every text line's quadrilateral, in `bgr` pixels, top to bottom.

    `check` runs between strips (the request's deadline).
    """
    scale = min(1.0, DETECT_SIDE / max(bgr.shape[:2]))
    if scale < 1.0:
        size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return [quad / scale for quad in _find_lines(bgr, detector, check)]


def _find_lines(bgr: np.ndarray, detector: Model, check: Callable[[], None]) -> list[Quad]:
    height, width = bgr.shape[:2]
    whole: list[Quad] = []
    cut: list[Quad] = []
    runs = strips(height, width)
    for number, (top, bottom) in enumerate(runs, 1):
        try:
            check()
        except BaseException:  # the deadline, between strips: hand back what the last one kept
            if number > 1:
                detector(np.zeros((1, 3, 32, 32), np.float32))
            raise
        # The strips have one shape: the detector keeps its arena for the next one.
        for quad in _detect(bgr[top:bottom], detector, keep_arena=number < len(runs)):
            quad[:, 1] += top
            ys = quad[:, 1]
            touches_top = top > 0 and ys.min() <= top + _EDGE
            touches_bottom = bottom < height and ys.max() >= bottom - 1 - _EDGE
            (cut if touches_top or touches_bottom else whole).append(quad)
    found = _unique(whole)
    seen = _hulls(found)
    pieces = [q for q, hull in zip(cut, _hulls(cut), strict=True) if not _covered(hull, seen)]
    found += _join(pieces)
    return sorted(found, key=lambda q: (q[:, 1].min(), q[:, 0].min()))


def _detect(image: np.ndarray, detector: Model, keep_arena: bool = False) -> list[Quad]:
    height, width = image.shape[:2]
    size = (max(32, round(width / 32) * 32), max(32, round(height / 32) * 32))
    resized = cv2.resize(image, size) if size != (width, height) else image
    blob = resized.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
    blob *= 2 / 255
    blob -= 1.0  # (x / 255 - 0.5) / 0.5, as the model was trained
    prediction = detector(blob, keep_arena=keep_arena)
    del blob
    boxes, _scores = _postprocess(prediction, (height, width))
    quads = []
    for box in boxes:
        quad = _clockwise(box.astype(np.float32))
        quad[:, 0] = np.clip(quad[:, 0], 0, width - 1)
        quad[:, 1] = np.clip(quad[:, 1], 0, height - 1)
        if np.linalg.norm(quad[0] - quad[1]) > 3 and np.linalg.norm(quad[0] - quad[3]) > 3:
            quads.append(quad)
    return quads


def _clockwise(points: np.ndarray) -> Quad:
    """Top-left, top-right, bottom-right, bottom-left (the recogniser's crop order)."""
    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32)


def _hulls(quads: list[Quad]) -> np.ndarray:
    """(n, 4) left, top, right, bottom: computed once, compared as arrays (a dense table has
    600 lines, and comparing them pairwise quad by quad took seconds)."""
    if not quads:
        return np.zeros((0, 4), np.float32)
    points = np.stack(quads)
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def _covered(piece: np.ndarray, lines: np.ndarray) -> bool:
    """Most of the hull `piece` lies inside one of the hulls `lines`: the same text seen whole."""
    if not len(lines):
        return False
    wide = np.minimum(lines[:, 2], piece[2]) - np.maximum(lines[:, 0], piece[0])
    high = np.minimum(lines[:, 3], piece[3]) - np.maximum(lines[:, 1], piece[1])
    inside = wide.clip(min=0) * high.clip(min=0)
    area = max(1.0, float((piece[2] - piece[0]) * (piece[3] - piece[1])))
    return bool((inside >= 0.5 * area).any())


def _unique(quads: list[Quad]) -> list[Quad]:
    """A line inside the overlap of two strips is found by both: keep the larger finding."""
    hulls = _hulls(quads)
    areas = (hulls[:, 2] - hulls[:, 0]).clip(min=1) * (hulls[:, 3] - hulls[:, 1]).clip(min=1)
    kept: list[int] = []
    for i in np.argsort(-areas, kind="stable"):
        if not _covered(hulls[i], hulls[kept]):
            kept.append(int(i))
    return [quads[i] for i in kept]


def _join(pieces: list[Quad]) -> list[Quad]:
    """Pieces of one tall line, cut by seams: those that overlap are merged into their hull."""
    groups: list[list[float]] = []
    for x0, y0, x1, y1 in sorted(_hulls(pieces).tolist(), key=lambda hull: hull[1]):
        for group in groups:
            gx0, gy0, gx1, gy1 = group
            overlap_x = min(x1, gx1) - max(x0, gx0)
            if overlap_x > 0.5 * min(x1 - x0, gx1 - gx0) and y0 <= gy1 + _EDGE:
                group[:] = [min(x0, gx0), min(y0, gy0), max(x1, gx1), max(y1, gy1)]
                break
        else:
            groups.append([x0, y0, x1, y1])
    return [
        np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
        for x0, y0, x1, y1 in groups
    ]


def single_line(height: int, width: int, quads: list[Quad]) -> Quad | None:
    """One quadrilateral for the whole line, when the image is one line: a label, a plate, a word.

    The detector is made for pages: on an image that is nothing but one line it often crops off
    the first or last character, splits the line in pieces, or finds nothing at all in a 94x24
    plate, while the recogniser reads a whole line at once. So when the lines found share one
    row that fills much of the image's height, the line is their hull, a quarter of its height
    taller at the top and bottom, and widened: in a small, wide image to its whole width (its
    margins cost nothing, and a box widened by a line height still lost an end character on 2
    of 100 plates); in a larger one by a line height on each side, clear of what else a photo
    holds. A small, wide image where nothing was found is read whole. Otherwise None: read the
    lines found.
    """
    small = 8 <= height <= 160 and width >= 1.5 * height
    if not quads:
        return _rectangle(0, 0, width - 1, height - 1) if small else None
    hulls = _hulls(quads).tolist()
    left, top = min(h[0] for h in hulls), min(h[1] for h in hulls)
    right, bottom = max(h[2] for h in hulls), max(h[3] for h in hulls)
    one_row = all(
        min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * min(a[3] - a[1], b[3] - b[1])
        for a in hulls
        for b in hulls
    )
    if not one_row or bottom - top < 0.4 * height:
        return None
    size = bottom - top
    return _rectangle(
        0.0 if small else max(0.0, left - size),
        max(0.0, top - size / 4),
        width - 1.0 if small else min(width - 1.0, right + size),
        min(height - 1.0, bottom + size / 4),
    )


def _rectangle(left: float, top: float, right: float, bottom: float) -> Quad:
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
