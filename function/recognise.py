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

HEIGHT = 48  # the PP-OCRv4 recogniser's input height
MIN_WIDTH = 320  # narrower inputs are padded, as rapidocr does (the model was trained so)


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


def read(line: np.ndarray, recogniser: object, alphabet: tuple[str, ...]) -> Reading:
    """Recognise one crop (BGR, any size)."""
    height, width = line.shape[:2]
    resized_width = max(1, math.ceil(HEIGHT * width / height))
    blob = np.zeros((1, 3, HEIGHT, max(MIN_WIDTH, resized_width)), dtype=np.float32)
    resized = cv2.resize(line, (resized_width, HEIGHT)).astype(np.float32)
    blob[0, :, :, :resized_width] = resized.transpose(2, 0, 1) * (2 / 255) - 1.0
    (name,) = (i.name for i in recogniser.get_inputs())
    probabilities = recogniser.run(None, {name: blob})[0][0]  # (steps, classes)
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
