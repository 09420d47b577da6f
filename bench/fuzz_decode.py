"""Coverage-guided fuzzing (atheris, libFuzzer) of decode + validation: bytes -> model input.

Whatever the bytes, `images.decode` must either return an 8-bit BGR image no larger than
MAX_SIDE, or refuse with InvalidImage / TooManyPixels. Anything else (another exception, a wrong
shape, a hang, a crash in a codec) is a finding: fix it and add the input to
tests/test_images.py as a regression test.

    python -m bench.fuzz_decode -max_total_time=600     # the longer run, by hand
    python -m bench.fuzz_decode -atheris_runs=20000      # a fixed number of inputs

The suite runs it for a few seconds (tests/test_fuzz.py). Seeds are rendered at start, one
small image per format and mode the decoder handles, so the fuzzer starts from valid files.
libFuzzer flags pass through; a directory given as an argument is used as the corpus instead.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import atheris
import numpy  # noqa: F401  imported first so it is not instrumented: slow, and not under test

with atheris.instrument_imports(include=["function", "PIL"]):
    from function import images
    from function.errors import InvalidImage, TooManyPixels

MAX_SIDE = 320
# Small, so a fuzzed header cannot make one input allocate gigabytes: the bound itself is
# what is under test, not the machine's memory.
MAX_PIXELS = 4_000_000


def check(data: bytes) -> None:
    """One input: refused cleanly, or a well-formed model input."""
    try:
        image = images.decode(data, max_side=MAX_SIDE, max_pixels=MAX_PIXELS)
    except (InvalidImage, TooManyPixels):
        return
    bgr = image.bgr
    assert bgr.dtype.name == "uint8" and bgr.ndim == 3 and bgr.shape[2] == 3, bgr.shape
    assert min(bgr.shape[:2]) >= 1 and max(bgr.shape[:2]) <= MAX_SIDE, bgr.shape
    assert image.width * image.height <= MAX_PIXELS
    assert 0 < image.scale <= 1.0


def seeds(directory: Path) -> None:
    """Small valid images in every format and mode the decoder accepts."""
    from PIL import Image

    from tests import render

    page = render.page(["Seed 42"], size=(120, 40), font_size=16).image
    variants = {
        "png": (page, "PNG", {}),
        "png-palette": (page.convert("P"), "PNG", {}),
        "png-alpha": (page.convert("RGBA"), "PNG", {}),
        "png-16bit": (page.convert("L").convert("I;16"), "PNG", {}),
        "jpeg": (page, "JPEG", {"quality": 80}),
        "jpeg-cmyk": (page.convert("CMYK"), "JPEG", {}),
        "webp": (page, "WEBP", {}),
        "gif": (page.convert("P"), "GIF", {}),
        "bmp": (page, "BMP", {}),
        "tiff": (page, "TIFF", {}),
        "tiff-bilevel": (page.convert("1"), "TIFF", {}),
    }
    for name, (image, fmt, options) in variants.items():
        (directory / name).write_bytes(render.encode(image, fmt, **options))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the orientation path
    (directory / "jpeg-exif").write_bytes(render.encode(page, "JPEG", exif=exif.tobytes()))


def main() -> None:
    args = list(sys.argv)
    if not any(Path(arg).is_dir() for arg in args[1:] if not arg.startswith("-")):
        corpus = Path(tempfile.mkdtemp(prefix="fuzz-decode-"))
        seeds(corpus)
        args.append(str(corpus))
    warnings.simplefilter("ignore")  # Pillow warns about every odd header; the checks decide
    atheris.Setup(args, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
