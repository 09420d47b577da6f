"""Every accepted format and colour mode is read, over HTTP, and nothing is ever upscaled."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from function.settings import Settings
from tests import render

TEXT = ["Format check 7391"]


def reads(server, data: bytes, expected: str = TEXT[0]) -> dict:
    response = server.post(data, "application/octet-stream")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "".join(expected.split()).lower() in "".join(body["text"].split()).lower()
    return body


@pytest.fixture(scope="module")
def rgb() -> Image.Image:
    return render.page(TEXT, size=(700, 140)).image


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("JPEG", "RGB", {"quality": 90}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGB", {}),
        ("PNG", "P", {}),
        ("PNG", "L", {}),
        ("PNG", "1", {}),
        ("WEBP", "RGB", {"quality": 90}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
        ("TIFF", "1", {"compression": "group4"}),
        ("GIF", "P", {}),
    ],
)
def test_format_and_mode(server, rgb, fmt, mode, options):
    image = rgb.convert(mode) if mode != "P" else rgb.quantize(16)
    reads(server, render.encode(image, fmt, **options))


@pytest.mark.parametrize("factor", [257, 16], ids=["16-bit range", "12-bit range"])
def test_sixteen_bit_greyscale(server, rgb, factor):
    # Pillow's own convert would clip 16-bit values at 255 and return a white page; scaling by
    # 65535 would leave a 12-bit scan (values up to 4080) nearly black.
    grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * factor
    image = Image.fromarray(grey)
    assert image.mode.startswith("I;16")
    reads(server, render.encode(image, "PNG"))


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("LA", "PNG"), ("RGBA", "WEBP")])
def test_transparent_background_becomes_white(server, rgb, mode, fmt):
    # Black text on a fully transparent black background: flattening by dropping alpha would
    # give black on black.
    alpha = Image.eval(rgb.convert("L"), lambda v: 255 - v)
    ink = Image.new("RGBA", rgb.size, (0, 0, 0, 0))
    ink.putalpha(alpha)
    image = ink if mode == "RGBA" else ink.convert(mode)
    reads(server, render.encode(image, fmt, lossless=True))  # PNG ignores `lossless`


def test_palette_with_transparency(server, rgb):
    image = rgb.quantize(16)
    white = image.getpixel((0, 0))
    image.info["transparency"] = white
    reads(server, render.encode(image, "PNG", transparency=white))


def test_an_animated_gif_uses_the_first_frame_and_a_multi_page_tiff_every_page(server):
    first = render.page(["First page 111"], size=(700, 140)).image
    second = render.page(["Second page 222"], size=(700, 140)).image
    gif = reads(server, render.encode(first, "GIF", save_all=True, append_images=[second]),
                "First page 111")  # fmt: skip
    assert "222" not in gif["text"] and "pages" not in gif
    tiff = render.encode(first, "TIFF", save_all=True, append_images=[second])
    body = reads(server, tiff, "First page 111")  # a document: tests/test_documents.py
    assert [page["page"] for page in body["pages"]] == [1, 2] and "222" in body["text"]


def test_small_image_is_never_upscaled(servers):
    """200x60: the library's defaults upscale it to a 736 px short side (~600 MB peak)."""
    small = render.encode(
        render.page(["HELLO 42"], size=(200, 60), font_size=30, origin=(10, 10)).image, "PNG"
    )
    # Two fresh processes, so neither peak starts from memory left by other tests' big images.
    optimised = reads(servers(MEMORY_OPTIMIZATION="true"), small, "HELLO 42")
    defaults = reads(servers(MEMORY_OPTIMIZATION="false"), small, "HELLO 42")

    assert optimised["image"] == {"width": 200, "height": 60, "scale": 1.0}
    # Measured 144 MB against 540-660 MB; a 200 MB gap cannot be noise.
    assert optimised["memory"]["peak_rss_mb"] + 200 < defaults["memory"]["peak_rss_mb"]


def test_large_photo_is_shrunk_to_max_side(server):
    body = reads(server, render.noisy_photo(), "PHOTO 2026")
    assert body["image"]["width"] == 4000 and body["image"]["height"] == 3000
    assert body["image"]["scale"] == pytest.approx(Settings.max_side / 4000, abs=0.001)


@pytest.mark.parametrize("size", [(20_000, 1), (1, 20_000), (1600, 3)])
def test_thin_strips_are_not_blown_up(servers, size):
    """rapidocr enlarges any side under 30 px proportionally: 20000x1 used to peak at 2.1 GB."""
    strip = render.encode(Image.new("L", size, 255), "PNG")
    assert len(strip) < 1000
    server = servers(MEMORY_OPTIMIZATION="true")  # fresh: its peak starts near idle
    response = server.post(strip, "image/png")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["image"]["width"], body["image"]["height"]) == size
    expected = min(1.0, Settings.max_side / max(size))
    assert body["image"]["scale"] == pytest.approx(expected, abs=0.001)
    assert body["memory"]["peak_rss_mb"] < 600, body["memory"]


def test_concurrent_full_size_decodes_do_not_add_up(servers):
    """PNG and GIF have no reduced-size decoding: each is decoded whole, one at a time."""
    # MAX_SIDE=320 makes the engine's share small, so what is measured is the decoding.
    server = servers(MAX_CONCURRENT_REQUESTS="4", MAX_SIDE="320", MALLOC_ARENA_MAX="2")
    gif = render.encode(Image.new("P", (7000, 7000), 0), "GIF")  # 49 MP, a few kB
    alone = server.post(gif, "image/gif").json()["memory"]["peak_rss_mb"]

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: server.post(gif, "image/gif"), range(4)))

    assert [r.status_code for r in responses] == [200] * 4
    together = max(r.json()["memory"]["peak_rss_mb"] for r in responses)
    # Each decode takes ~250 MB at 49 MP: four in parallel would add ~750 MB to one.
    assert together < alone + 250, (alone, together)
