"""Space: put back the word spaces the recogniser drops, from its own odds and the line's pixels.

The PP-OCRv4 recogniser was trained mostly on Chinese and rarely makes a space its best guess:
English comes out as `DocumentNo:TD01167104`. Two signals put the spaces back:

- the model's own odds: between the two characters of a word gap it usually gives the space
  class a clear probability (0.1 and up) even when it does not pick it;
- the crop's pixels: between neighbouring characters, a run of ink-free columns much wider than
  the line's usual gap between letters, where the characters' centres are also further apart
  than usual. Both are measured against the line itself, so widely tracked receipt print and
  tight book print are judged alike. Between two digits only the odds count: tabular figures
  give a narrow `1` the advance of a `0`, and `11` looks like a gap.

Neither puts a space inside a number (`9.90`, `1,142`): receipts print the point as wide as a
digit, and both signals see a gap on either side of it.

Only Latin-like neighbours are considered: CJK text is written without spaces, and none are put
between CJK characters or between CJK and anything else.
"""

from __future__ import annotations

import unicodedata

import cv2
import numpy as np

from .recognise import Reading

# Thresholds, in text heights unless said otherwise; tuned on the development receipts and
# document pages for words F1 (docs/benchmarks.md).
ODDS = 0.1  # the model's space probability between two characters that makes a space
RUN_FLOOR = 0.3  # a blank run this wide at least, ...
RUN_MARGIN = 0.2  # ... and this much wider than the line's median run, ...
PITCH_MARGIN = 0.2  # ... between centres this much further apart than the median: a space
_INK_SHARE = 0.02  # a column with less ink than this share of the crop's height is blank


def spaced(reading: Reading, line: np.ndarray) -> str:
    """`reading.text` with a space wherever the odds or the crop `line` show a word gap."""
    text = reading.text
    pairs = measure(reading, line)
    found = [p for p in pairs if p is not None]
    if not found:
        return " ".join(text.split())
    run_threshold = max(RUN_FLOOR, float(np.median([p[0] for p in found])) + RUN_MARGIN)
    pitch_threshold = float(np.median([p[1] for p in found])) + PITCH_MARGIN
    out = [text[0]]
    for i, (pair, odds) in enumerate(zip(pairs, reading.space_odds, strict=True), start=1):
        if pair is not None and not _in_number(text, i):
            run, pitch = pair
            digits = text[i - 1].isdigit() and text[i].isdigit()
            if odds >= ODDS or (run >= run_threshold and pitch >= pitch_threshold and not digits):
                out.append(" ")
        out.append(text[i])
    return " ".join("".join(out).split())  # one space at most, none at the ends


def _in_number(text: str, i: int) -> bool:
    """Whether text[i - 1] and text[i] are a digit and the point or comma of `9.90`, `1,142`.

    A comma is a number's only before one to three digits: `5, 2020` keeps its space.
    """
    mark = i if text[i - 1].isdigit() else i - 1  # where the point or comma would be
    if text[mark] not in ".," or mark < 1 or not text[mark - 1].isdigit():
        return False
    digits = len(text[mark + 1 :]) - len(text[mark + 1 :].lstrip("0123456789"))
    return digits >= 1 if text[mark] == "." else 1 <= digits <= 3


def measure(reading: Reading, line: np.ndarray) -> list[tuple[float, float] | None]:
    """Per pair of neighbouring characters: (widest blank run, centre distance), text heights.

    None where no space may go: next to a space already read, or next to a CJK character.
    """
    text = reading.text
    if len(text) < 2:
        return []
    blank, height = _blank_columns(line)
    pairs: list[tuple[float, float] | None] = []
    for i in range(1, len(text)):
        if _spaceable(text[i - 1]) and _spaceable(text[i]):
            left, right = reading.centres[i - 1], reading.centres[i]
            run = _longest_run(blank[int(left) : int(right) + 1])
            pairs.append((run / height, (right - left) / height))
        else:
            pairs.append(None)
    return pairs


def _spaceable(char: str) -> bool:
    """Latin-like: not a space, not wide (CJK ideographs, kana, hangul, full-width forms)."""
    return not char.isspace() and unicodedata.east_asian_width(char) not in ("W", "F")


def _blank_columns(line: np.ndarray) -> tuple[np.ndarray, int]:
    """Per column of the crop, whether it is free of ink; and the text's height in pixels."""
    gray = cv2.cvtColor(line, cv2.COLOR_BGR2GRAY) if line.ndim == 3 else line
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if ink.mean() > 0.5:  # light text on a dark ground: the ink is the minority
        ink = 1 - ink
    rows = np.flatnonzero(ink.sum(axis=1) > 0.04 * gray.shape[1])  # the text's own rows
    height = int(rows[-1] - rows[0] + 1) if rows.size else gray.shape[0]
    return ink.sum(axis=0) <= _INK_SHARE * gray.shape[0], max(height, 1)


def _longest_run(blank: np.ndarray) -> int:
    if not blank.any():
        return 0
    padded = np.concatenate(([0], blank.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())
