"""Recognise: one line's pixels -> its characters, their confidence, and where each one is.

Each line is cut out of the decoded image (perspective-corrected, so skewed lines come out
straight) and read alone, right after it is cut: nothing holds every crop of a page at once, and
no crop is padded to the width of a longer neighbour (rapidocr's batches of 6 padded to the
widest line cost 170-340 MB on pages with long lines). The CTC decoder also says at which
column of the model's output each character was read, which `spacing` turns into word gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .engine import Model

HEIGHT = 48  # the PP-OCRv4 recogniser's input height
MIN_WIDTH = 320  # narrower inputs are padded, as rapidocr does (the model was trained so)
# Wider inputs are read in pieces: the model's time and memory grow with the width (3200 px:
# ~70 MB), and a thin strip of an image would otherwise become a 100,000-px-wide input.
MAX_WIDTH = 3200
MIN_HEIGHT = 6  # a crop lower than this holds no readable text


@dataclass(frozen=True)
class Reading:
    """What the recogniser read in one crop."""

    text: str
    score: float
    centres: tuple[float, ...]  # x of each character's centre, in crop pixels
    # Per pair of neighbouring characters: the model's highest probability of a space between
    # them. It seldom makes a space its best guess, but between words it often considers one.
    space_odds: tuple[float, ...] = ()


def crop(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The line inside `quad`, warped upright to a rectangle; tall narrow lines turned flat."""
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    line = cv2.warpPerspective(
        bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height >= 1.5 * width:  # vertical text, as rapidocr reads it
        line = np.ascontiguousarray(np.rot90(line))
    return line


def read(line: np.ndarray, recogniser: Model, alphabet: tuple[str, ...]) -> Reading:
    """Recognise one crop (BGR, any size), in pieces if it is very long."""
    height, width = line.shape[:2]
    if height < MIN_HEIGHT:
        return Reading("", 0.0, (), ())
    pieces = math.ceil(HEIGHT * width / height / MAX_WIDTH)
    if pieces == 1:
        return _read(line, recogniser, alphabet)
    readings, offsets, start = [], [], 0
    for k in range(1, pieces + 1):
        end = width if k == pieces else _quiet_column(line, width * k // pieces, width // 20)
        readings.append(_read(line[:, start:end], recogniser, alphabet))
        offsets.append(start)
        start = end
    found = [(r, o) for r, o in zip(readings, offsets, strict=True) if r.text]
    if not found:
        return Reading("", 0.0, (), ())
    odds: list[float] = []
    for i, (reading, _) in enumerate(found):
        if i:
            odds.append(0.0)  # the model saw no gap between pieces: the pixels decide
        odds.extend(reading.space_odds)
    return Reading(
        text="".join(r.text for r, _ in found),
        score=float(np.mean([r.score for r, _ in found])),
        centres=tuple(c + offset for r, offset in found for c in r.centres),
        space_odds=tuple(odds),
    )


def _quiet_column(line: np.ndarray, near: int, reach: int) -> int:
    """The column within `reach` of `near` where the crop is most uniform: likely between words."""
    left, right = max(1, near - reach), min(line.shape[1] - 1, near + reach)
    spread = line[:, left:right].astype(np.float32).std(axis=(0, 2))
    return left + int(spread.argmin())


def _read(line: np.ndarray, recogniser: Model, alphabet: tuple[str, ...]) -> Reading:
    height, width = line.shape[:2]
    resized_width = max(1, math.ceil(HEIGHT * width / height))
    blob = np.zeros((1, 3, HEIGHT, max(MIN_WIDTH, resized_width)), dtype=np.float32)
    resized = cv2.resize(line, (resized_width, HEIGHT)).astype(np.float32)
    blob[0, :, :, :resized_width] = resized.transpose(2, 0, 1) * (2 / 255) - 1.0
    probabilities = recogniser(blob)[0]  # (steps, classes)
    steps = probabilities.shape[0]
    best = probabilities.argmax(axis=1)
    keep = best != 0  # not the CTC blank ...
    keep[1:] &= best[1:] != best[:-1]  # ... and not a repeat of the step before
    columns = np.flatnonzero(keep)
    if columns.size == 0:
        return Reading("", 0.0, (), ())
    confidence = probabilities[columns, best[columns]]
    # Step t of the output covers input columns around (t + 0.5) * input_width / steps.
    to_crop = blob.shape[3] / steps * width / resized_width
    space = probabilities[:, len(alphabet) - 1]  # the alphabet's last class
    return Reading(
        text="".join(alphabet[i] for i in best[columns]),
        score=float(confidence.mean()),
        centres=tuple(float((c + 0.5) * to_crop) for c in columns),
        space_odds=tuple(
            float(space[a + 1 : b].max()) if b > a + 1 else 0.0
            for a, b in zip(columns[:-1], columns[1:], strict=True)
        ),
    )
