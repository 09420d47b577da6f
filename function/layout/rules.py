"""Ruling lines: the printed horizontal and vertical rules of a page, found by morphology.

A rule is a run of dark pixels far longer than any letter is wide and about as thin as a pen
stroke. Opening the page's ink with a long thin kernel keeps exactly those runs (OpenCV's
standard way to find a table's grid); each connected run that remains is one rule. Shaded bands,
photos and logos survive the opening as thick blobs and are dropped by their thickness. This runs
on the bounded image the engine read (never a second full-size copy): a grey copy and two masks of
it, one byte per pixel, a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .boxes import Box

if TYPE_CHECKING:
    import numpy as np

LENGTH = 40  # the page's side over this is the shortest rule (2.5 % of it: longer than a word)
MIN_LENGTH = 20  # ... but never shorter than this many pixels
THICKNESS = 6  # thickest rule, in pixels of the image read (a 2 pt rule at 200 dpi)


@dataclass(frozen=True)
class Rules:
    """The page's rules as thin boxes in original-image pixels."""

    horizontal: tuple[Box, ...] = ()
    vertical: tuple[Box, ...] = ()


NONE = Rules()  # a page without rules (or whose image was not looked at)


def find(bgr: np.ndarray, to_original: Callable[[float, float], tuple[float, float]]) -> Rules:
    """The rules of a decoded page; `to_original` maps its pixels back to the client's."""
    # Imported here, as the engine's steps import it: OpenCV that cannot load fails the engine
    # (`engine_failed`), not the import of the function.
    import cv2

    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    # Ink: darker than the page around it (adaptive, so a grey background or shading is not).
    ink = cv2.adaptiveThreshold(
        grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15
    )
    del grey
    length = max(MIN_LENGTH, max(ink.shape) // LENGTH)
    found = []
    for kernel, long_axis in (((length, 1), 0), ((1, length), 1)):
        element = cv2.getStructuringElement(cv2.MORPH_RECT, kernel)
        runs = cv2.morphologyEx(ink, cv2.MORPH_OPEN, element)
        # Outer contours give each run's box without a label image (4 bytes a pixel).
        contours, _hierarchy = cv2.findContours(runs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        del runs
        rules = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if (h if long_axis == 0 else w) <= THICKNESS:
                left, top = to_original(float(x), float(y))
                right, bottom = to_original(float(x + w), float(y + h))
                rules.append((left, top, right, bottom))
        found.append(tuple(sorted(rules)))
    return Rules(horizontal=found[0], vertical=found[1])
