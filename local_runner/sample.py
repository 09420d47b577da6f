"""`sample`: render an image to try the function with, so the README's examples work as written.

A till receipt drawn with Pillow's bundled font (no font or image file comes from elsewhere):
a heading, an address, a date, items with right-aligned prices and a total. The format follows
the file name (receipt.png, receipt.jpg, receipt.webp, ...).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

RECEIPT = [
    ("CORNER CAFE", ""),
    ("12 Harbour Street", ""),
    ("2026-11-29 12:41", ""),
    ("Flat white", "3.40"),
    ("Croissant", "2.80"),
    ("Sparkling water", "2.10"),
    ("TOTAL EUR", "8.30"),
    ("Thank you!", ""),
]
_WIDTH, _MARGIN, _FONT_SIZE, _LINE_HEIGHT = 720, 40, 40, 72


def receipt() -> Image.Image:
    """The receipt above: black on white, prices aligned on the right margin."""
    image = Image.new("RGB", (_WIDTH, 2 * _MARGIN + _LINE_HEIGHT * len(RECEIPT)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=_FONT_SIZE)
    for row, (left, right) in enumerate(RECEIPT):
        y = _MARGIN + row * _LINE_HEIGHT
        draw.text((_MARGIN, y), left, fill="black", font=font)
        if right:
            draw.text((_WIDTH - _MARGIN, y), right, fill="black", font=font, anchor="ra")
    return image


def write(path: Path) -> str:
    """Render the receipt into `path` (format from its suffix); return what the CLI prints."""
    image = receipt()
    image.save(path)  # ValueError for a suffix Pillow does not know: the CLI reports it
    return (
        f"wrote {path} ({image.width}x{image.height}, {len(RECEIPT)} lines of text); try:\n"
        f"  curl --data-binary @{path} localhost:8080"
    )
