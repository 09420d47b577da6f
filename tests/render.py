"""Images the tests draw themselves: known text at known places, in every format and mode.

English uses Pillow's bundled font; Chinese uses WenQuanYi Micro Hei from the
`paperang-p2-fonts-cjk` package in requirements-dev.txt. No image file comes from elsewhere.
"""

from __future__ import annotations

import importlib.resources
import io
import os
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont


def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    path = importlib.resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc"
    return ImageFont.truetype(str(path), size)


def latin_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@dataclass
class Page:
    """An RGB image and where each line of text was drawn (left, top, right, bottom)."""

    image: Image.Image
    lines: dict[str, tuple[int, int, int, int]]


def page(
    lines: list[str],
    size: tuple[int, int] = (900, 300),
    font_size: int = 48,
    origin: tuple[int, int] = (30, 30),
    cjk: bool = False,
) -> Page:
    """Black text on white, one line under the other, starting at `origin`."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = cjk_font(font_size) if cjk else latin_font(font_size)
    x, y = origin
    boxes = {}
    for line in lines:
        box = draw.textbbox((x, y), line, font=font)
        draw.text((x, y), line, fill="black", font=font)
        boxes[line] = box
        y += int(font_size * 1.8)
    return Page(image, boxes)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """Incompressible pixels: the PNG is about 3 bytes per pixel, for size limits."""
    pixels = os.urandom(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, pixels), "PNG")


def noisy_photo(size: tuple[int, int] = (4000, 3000), text: str = "PHOTO 2026") -> bytes:
    """A 12 MP JPEG with busy texture, so it is as hard on memory as a real phone photo."""
    image = Image.effect_noise(size, 60).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 200, 2600, 700), fill="white")
    draw.text((260, 260), text, fill="black", font=latin_font(300))
    return encode(image, "JPEG", quality=90)


def placed(
    texts: list[tuple[int, int, str]],
    size: tuple[int, int],
    rules: list[tuple[int, int, int, int]] = (),
    font_size: int = 28,
) -> bytes:
    """A PNG with each text drawn at its (x, y) and each rule a 2-pixel line (x0, y0, x1, y1)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = latin_font(font_size)
    for x, y, text in texts:
        draw.text((x, y), text, fill="black", font=font)
    for rule in rules:
        draw.line(rule, fill="black", width=2)
    return encode(image, "PNG")


def grid(
    cells: list[list[str | list[str]]],
    widths: list[int],
    origin: tuple[int, int] = (40, 40),
    ruled: bool = True,
    font_size: int = 28,
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, int, int]], int]:
    """A table's texts and rules: a cell is a string or its wrapped lines. Returns the bottom."""
    x0, y = origin
    pitch, pad = int(font_size * 1.5), font_size // 2
    texts, rules = [], []
    lefts = [x0 + sum(widths[:k]) for k in range(len(widths) + 1)]
    tops = [y]
    for row in cells:
        lines = [cell if isinstance(cell, list) else [cell] for cell in row]
        for left, cell in zip(lefts, lines, strict=False):
            texts += [(left + pad, y + pad + k * pitch, text) for k, text in enumerate(cell)]
        y += max(len(cell) for cell in lines) * pitch + 2 * pad
        tops.append(y)
    if ruled:
        rules += [(lefts[0], top, lefts[-1], top) for top in tops]
        rules += [(left, tops[0], left, tops[-1]) for left in lefts]
    return texts, rules, y
