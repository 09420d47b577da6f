"""Orient: which way up the page is (0, 90, 180 or 270 degrees), decided before reading it.

Most images carry no EXIF orientation (scans, PDF pages, screenshots, re-saved photos), and a
page turned sideways or upside down reads as noise. The decision costs little on an upright page:

1. Shape, free: the detector's boxes are already found on the page as sent. On a page turned
   by a quarter, its lines are tall and narrow; more line length in tall boxes than in wide ones
   means sideways. A small tall image where nothing was found (a label turned on its side) is
   one sideways line.
2. Content, a few ms: the lines of the majority shape, the longest few, are cut out and turned
   flat (as the recogniser's crop does), and the text-direction classifier in rapidocr's wheel
   (ch_ppocr_mobile_v2.0_cls, 0.6 MB) says of each whether it is upside down. It sees 192x48 px
   and squeezes a longer line, so it is shown a piece of each line no wider than that shape.
   Their mean vote decides between 0 and 180 (or, on a sideways page, 270 and 90).
3. Where a mistake is likely (the vote is not sure, or says upside down), the recogniser's
   confidence in a few lines read both ways decides. An image that is one wide line (a plate)
   is read whole anyway, so that reading is made first and kept: if it is confident, the line
   is upright and nothing else runs; else the classifier, then the line read flipped, decide.

The decoded image is then turned once (the copy as sent is dropped) and detected again; the
caller maps the boxes found on the turned page back with `Turn.back`, so they stay in the
pixels of the image as sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from . import detect, recognise
from .engine import Models
from .images import DecodedImage

# What the classifier was trained on (rapidocr's config.yaml: cls_image_shape [3, 48, 192]).
HEIGHT, WIDTH = 48, 192
LINES = 8  # the longest lines of the majority shape that vote
TALL = 2.0  # a box this many times taller than wide is a line on its side (and wide likewise)
# The classifier's mean vote for "upside down" at or below which the page is upright; above,
# the recogniser decides. One line (a plate's few characters) is less evidence: on 100 plates,
# every one turned upside down had a vote above 0.07, and 60 of them upright at most 0.01.
SURE = 0.1
SURE_ONE_LINE = 0.01
# An image that is one wide line is read whole anyway, so it is read first, and a reading this
# confident is taken as upright with no other evidence. On 100 plates, read as sent: upright
# 98 of 100 at 0.9 or more (median 0.9995), upside down none above 0.8 (at most 0.79).
CONFIDENT = 0.9
CHECKED = 3  # the lines read both ways to decide ...
READ = 8  # ... each a piece at most this many times as wide as high
_TURNS = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


@dataclass(frozen=True)
class Turn:
    """The clockwise turn applied to an image of `width` x `height` (as sent) to read it."""

    degrees: int
    width: int
    height: int

    def back(self, x: float, y: float) -> tuple[float, float]:
        """A point of the turned image (in original pixels) -> the same point in the image as
        sent. Corners keep their order: the text's top-left stays first, wherever it lands."""
        if self.degrees == 90:  # as sent (x, y) went to (height - y, x)
            return (y, round(self.height - x, 1))
        if self.degrees == 180:
            return (round(self.width - x, 1), round(self.height - y, 1))
        if self.degrees == 270:  # as sent (x, y) went to (y, width - x)
            return (round(self.width - y, 1), x)
        return (x, y)


def upright(
    image: DecodedImage, models: Models, check: Callable[[], None] = lambda: None
) -> tuple[DecodedImage, Turn, list[detect.Quad] | None, recognise.Reading | None]:
    """The image turned upright, the turn, its lines if they need not be detected again, and
    the reading of the image as one line (`detect.single_line`) if it was read to decide.

    On an upright page the lines found to decide are the page's lines (returned, not detected
    twice); on a turned one they are None, and the caller detects them on the turned image.
    """
    unturned = Turn(0, image.width, image.height)
    if models.orienter is None or models.detector is None:
        return image, unturned, None, None
    quads = detect.find_lines(image.bgr, models.detector, check)
    height, width = image.bgr.shape[:2]
    whole = detect.single_line(height, width, quads) if _one_line(height, width) else None
    if whole is not None and models.classifier is None:  # (USE_ANGLE_CLS may flip the line)
        # One wide line: the reading that decides is the line's own, which the caller keeps.
        line = recognise.crop(image.bgr, whole)
        reading = recognise.read(line, models.recogniser, models.alphabet)
        if not _upside_down(line, reading, models):
            return image, unturned, quads, reading
        return turned(image, 180), Turn(180, image.width, image.height), None, None
    degrees = decide(image.bgr, quads, models)
    if degrees == 0:
        return image, unturned, quads, None
    return turned(image, degrees), Turn(degrees, image.width, image.height), None, None


def _upside_down(line: np.ndarray, reading: recognise.Reading, models: Models) -> bool:
    """Whether one wide line, read as sent with `reading`, is upside down: never when that
    reading is confident; otherwise as the classifier and the line read flipped say."""
    if reading.score >= CONFIDENT or len(line) < recognise.MIN_HEIGHT:
        return False
    if float(models.orienter(_chunk(line)[None])[0, 1]) <= SURE_ONE_LINE:
        return False
    flipped = recognise.read(line[::-1, ::-1], models.recogniser, models.alphabet)
    return flipped.score * len(flipped.text) > reading.score * len(reading.text)


def decide(bgr: np.ndarray, quads: list[detect.Quad], models: Models) -> int:
    """The clockwise turn, 0/90/180/270, that brings the page in `bgr` upright."""
    height, width = bgr.shape[:2]
    sizes = [_size(quad) for quad in quads]
    wide = sum(w for w, h in sizes if w >= TALL * h)
    tall = sum(h for w, h in sizes if h >= TALL * w)
    sideways = tall > wide
    if sideways:
        voters = [q for q, (w, h) in zip(quads, sizes, strict=True) if h >= TALL * w]
    else:
        voters = [q for q, (w, h) in zip(quads, sizes, strict=True) if h < TALL * w]
    # An image the size of one line (a plate, a label) is its own evidence: its boxes are a
    # few characters, often square, and it is read whole.
    one_line = _one_line(height, width) or _one_line(width, height)
    if one_line:
        sideways, voters = height > width, [_whole(height, width)]
    elif not sideways and (whole := detect.single_line(height, width, quads)) is not None:
        voters = [whole]
    voters = sorted(voters, key=lambda q: -max(_size(q)))[:LINES]
    crops = [c for c in (recognise.crop(bgr, q) for q in voters) if len(c) >= recognise.MIN_HEIGHT]
    if not crops:  # nothing to read, whichever way up
        return 0
    vote = float(models.orienter(np.stack([_chunk(c) for c in crops]))[:, 1].mean())
    # Turning an upright page around would cost its text: unless the classifier is sure it is
    # upright, the recogniser's confidence both ways decides.
    flipped = vote > (SURE_ONE_LINE if one_line else SURE) and _reads_better_flipped(
        crops[:CHECKED], models
    )
    # A sideways line's crop is turned a quarter counter-clockwise to lie flat: if that reads
    # upright, so does the page turned the same way (270 clockwise).
    if sideways:
        return 90 if flipped else 270
    return 180 if flipped else 0


def turned(image: DecodedImage, degrees: int) -> DecodedImage:
    """`image` turned clockwise by `degrees`; its size as sent turned with it."""
    bgr = cv2.rotate(image.bgr, _TURNS[degrees])
    if degrees == 180:
        return DecodedImage(bgr=bgr, width=image.width, height=image.height)
    return DecodedImage(bgr=bgr, width=image.height, height=image.width)


def _size(quad: detect.Quad) -> tuple[float, float]:
    """(width, height) of a quadrilateral: top edge, left edge."""
    return float(np.linalg.norm(quad[1] - quad[0])), float(np.linalg.norm(quad[3] - quad[0]))


def _whole(height: int, width: int) -> detect.Quad:
    return np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])


def _one_line(height: int, width: int) -> bool:
    """The size of an image that is one line: as `detect.single_line` judges it."""
    return 8 <= height <= 160 and width >= 1.5 * height


def _reads_better_flipped(crops: list[np.ndarray], models: Models) -> bool:
    """Whether the recogniser is surer of these lines turned upside down than as they are."""
    confidence = [0.0, 0.0]
    for crop in crops:
        height, width = crop.shape[:2]
        piece = min(width, READ * height)  # the middle: a long line costs what a short one does
        crop = crop[:, (width - piece) // 2 : (width + piece) // 2]
        for k, line in enumerate((crop, crop[::-1, ::-1])):
            reading = recognise.read(line, models.recogniser, models.alphabet)
            confidence[k] += reading.score * len(reading.text)
    return confidence[1] > confidence[0]


def _chunk(line: np.ndarray) -> np.ndarray:
    """The middle of a flat line crop, at most WIDTH:HEIGHT, as the classifier's input.

    Normalised as rapidocr does, padded with zeros (its mid-grey) to the classifier's width.
    """
    height, width = line.shape[:2]
    piece = min(width, height * WIDTH // HEIGHT)
    start = (width - piece) // 2
    size = (max(1, min(WIDTH, round(HEIGHT * piece / height))), HEIGHT)
    resized = cv2.resize(line[:, start : start + piece], size).astype(np.float32)
    chunk = np.zeros((3, HEIGHT, WIDTH), np.float32)
    chunk[:, :, : size[0]] = resized.transpose(2, 0, 1) * (2 / 255) - 1.0
    return chunk
