"""Bytes -> a small BGR array for the model, refusing bombs before they are decoded.

Memory is decided here, before the model sees anything: the pixel count is checked from the
header, JPEGs are decoded at reduced size by the codec itself (`draft`), large images are shrunk
with a cheap integer `reduce` before any colour conversion, and nothing is ever upscaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from .errors import InvalidImage, TooManyPixels

# Formats Pillow decodes natively and safely (JPEG includes multi-picture MPO from cameras);
# never EPS/PS (Ghostscript) or other exotica.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
# EXIF orientation -> the transpose that displays the image upright (TIFF/EXIF spec, tag 0x0112).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {5, 6, 7, 8}


@dataclass(frozen=True)
class DecodedImage:
    """The model's input and how it maps back to the image as the client sees it."""

    bgr: np.ndarray
    width: int  # original width after EXIF orientation
    height: int

    @property
    def scale(self) -> float:
        """Model-input pixels per original pixel along the long side (1.0 = full size)."""
        return round(max(self.bgr.shape[:2]) / max(self.width, self.height), 4)

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of the model input back to original-image pixels."""
        sx = self.width / self.bgr.shape[1]
        sy = self.height / self.bgr.shape[0]
        return (
            round(min(max(x * sx, 0.0), self.width), 1),
            round(min(max(y * sy, 0.0), self.height), 1),
        )


def is_accepted_media_type(mimetype: str) -> bool:
    """`is_image_media_type`, or a PDF (application/pdf)."""
    return is_image_media_type(mimetype) or _bare(mimetype) == "application/pdf"


def _bare(mimetype: str) -> str:
    return mimetype.split(";")[0].strip().lower()


def is_image_media_type(mimetype: str) -> bool:
    """Content types accepted as raw image bytes: image/*, application/octet-stream, or none.

    The subtype need not match the bytes, which are sniffed: browsers and tools often say
    image/jpeg for any picture.
    """
    mimetype = _bare(mimetype)
    return mimetype in ("", "application/octet-stream") or mimetype.startswith("image/")


# How each of FORMATS begins (JPEG/MPO, PNG, GIF, BMP, TIFF both byte orders; WebP is RIFF).
_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)


def has_image_signature(data: bytes) -> bool:
    """Whether `data` begins like one of the formats decoded here (not that it is valid)."""
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def decode(data: bytes, *, max_side: int | None, max_pixels: int) -> DecodedImage:
    """Decode `data`, apply EXIF orientation, and shrink so neither side exceeds `max_side`.

    `max_side=None` keeps the original size (MEMORY_OPTIMIZATION=false).
    """
    return decode_image(_open(data, max_pixels), max_side=max_side, max_pixels=max_pixels)


def decode_image(image: Image.Image, *, max_side: int | None, max_pixels: int) -> DecodedImage:
    """`decode` for an image already opened: one frame of a multi-page TIFF, say."""
    _check_pixels(image, max_pixels)
    orientation = _orientation(image)
    width, height = image.size[::-1] if orientation in _SWAPS_SIDES else image.size
    target = _target_size(image.size, max_side)
    if target != image.size and image.format in ("JPEG", "MPO"):
        image.draft(None, target)  # the codec decodes at 1/2, 1/4 or 1/8 scale, >= target
    _load(image)
    # One step at a time, each rebinding `image`: the step before is freed as soon as the next
    # has made its copy, so at most two copies of the image exist at any moment.
    image = _eight_bit(image)
    image = _rgb_or_rgba(image)
    image = _reduce(image, target)
    image = _flatten(image)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    bgr = np.array(image)  # a writable copy ...
    del image
    bgr[..., [0, 2]] = bgr[..., [2, 0]]  # ... turned from RGB to the model's BGR in place
    return DecodedImage(bgr=bgr, width=width, height=height)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        return Image.open(BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # Pillow's own ceiling, above any MAX_PIXELS allowed
        raise _too_many_pixels("", max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidImage(
            "The body is not a readable image. Send JPEG, PNG, WebP, BMP, TIFF or GIF."
        ) from None


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(f" ({width}x{height} = {width * height:,} pixels)", max_pixels)


def _too_many_pixels(size: str, max_pixels: int) -> TooManyPixels:
    return TooManyPixels(
        f"The image{size} has more pixels than MAX_PIXELS ({max_pixels:,}) allows; it was "
        "refused from its header, before decoding."
    )


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a broken EXIF block must not cost the text; it is only rotation
        return 1


def _target_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    width, height = size
    if max_side is None or max(width, height) <= max_side:
        return size
    ratio = max_side / max(width, height)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise InvalidImage(f"The image data is corrupt or truncated ({exc}).") from None


def _eight_bit(image: Image.Image) -> Image.Image:
    return _to_8bit(image) if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F") else image


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    """Any mode Pillow decodes (palette, CMYK, bilevel, ...) -> L or RGB, or RGBA if transparent."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _reduce(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """A large image first shrunk by an integer factor: cheap, and every step after is smaller."""
    factor = min(image.size[0] // target[0], image.size[1] // target[1])
    return image.reduce(factor) if factor >= 2 else image


def _flatten(image: Image.Image) -> Image.Image:
    """8-bit RGB; transparent pixels become white, since text on them is usually dark."""
    if image.mode == "RGBA":
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        return flat
    return image.convert("RGB") if image.mode != "RGB" else image


def _to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit or float greyscale to 8-bit, stretched over the values used.

    Pillow's own convert clips at 255 (a white page), and scaling by the container's range
    (65535) leaves a 12-bit scan in a 16-bit PNG nearly black.
    """
    values = np.asarray(image, dtype=np.float32)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if high > low:
        values = (values - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
