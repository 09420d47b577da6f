"""The try-it page in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against a real functions-framework process.

The `chromium` fixture installs the browser when it is missing (apt-get, as bench/setup.py
installs Tesseract); where it cannot, these tests fail saying so: they never skip.

    UPDATE_SCREENSHOT=1 python -m pytest tests/test_browser.py   # also rewrites docs/browser.png
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests import pdfs, render
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The browser, its driver, and fonts for Latin and CJK text (no fonts come with Chromium).
PACKAGES = ["chromium", "chromium-driver", "fonts-liberation", "fonts-wqy-microhei"]
SCREENSHOT = ROOT / "docs" / "browser.png"
WINDOW = (1280, 1100)  # a desktop window the whole result fits in, for the screenshot
# The page's first two block colours (COLOURS in function/web/index.html).
FIRST_BLOCK, SECOND_BLOCK = (0xD6, 0x27, 0x28), (0x00, 0x72, 0xB2)

ENGLISH = ["Invoice 2026-117", "Total due 42.50 EUR"]
CHINESE = ["发票号码 12345", "合计金额 人民币"]
SCANNED = ["Delivery note 88", "Received in good order"]


def install_chromium() -> None:
    """Debian's Chromium and chromedriver, installed when missing; pytest.fail when impossible."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    how = f"apt-get install -y --no-install-recommends {' '.join(PACKAGES)}"
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.fail(f"headless Chromium is missing and this user cannot install it: run `{how}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], how.split()):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(
                f"could not install headless Chromium: `{' '.join(command)}` failed:\n"
                f"{done.stderr.strip()[-2000:]}"
            )
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"`{how}` ran but {CHROMIUM} or {CHROMEDRIVER} is still missing")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    install_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        # As root, in a container without a GPU or a large /dev/shm.
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        # A closed network: no update checks, sync or QUIC; a fresh profile each run.
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        # Screenshot pixels are CSS pixels (the window's size is set below).
        "--force-device-scale-factor=1",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is given: Selenium Manager (which would download one) is never asked.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_window_size(*WINDOW)
    yield driver
    driver.quit()


def open_page(browser, url: str) -> None:
    browser.get(url)
    browser.find_element("id", "file")  # the page, not the JSON service info


def upload(browser, path: Path) -> None:
    browser.find_element("id", "file").send_keys(str(path))


def wait_for_answer(browser) -> None:
    def answered(driver) -> bool:
        shown = driver.execute_script(
            "return !document.getElementById('result').hidden"
            " || !document.getElementById('error').hidden"
        )
        return shown and driver.execute_script("return !document.body.hasAttribute('aria-busy')")

    WebDriverWait(browser, 90, poll_frequency=0.1).until(answered)


def console_errors(browser) -> list[str]:
    """Errors the page logged: a CSP violation, a failed script or request."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def two_blocks(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, int, int, int]]]:
    """1000x700: an English block above a Chinese one, with where each line was drawn."""
    english = render.page(ENGLISH, size=(1000, 300))
    chinese = render.page(CHINESE, size=(1000, 300), cjk=True, font_size=44)
    image = Image.new("RGB", (1000, 700), "white")
    image.paste(english.image, (0, 0))
    image.paste(chinese.image, (0, 400))
    lines = dict(english.lines)
    lines.update(
        {text: (x0, y0 + 400, x1, y1 + 400) for text, (x0, y0, x1, y1) in chinese.lines.items()}
    )
    path = tmp_path_factory.mktemp("upload") / "receipt.png"
    image.save(path)
    return path, lines


def squash(text: str) -> str:
    return "".join(text.split()).lower()


class Screen:
    """The screenshot, and the place the preview image has on it."""

    def __init__(self, browser) -> None:
        png = io.BytesIO(browser.get_screenshot_as_png())
        self.image = Image.open(png).convert("RGB")
        self.pixels = np.asarray(self.image, dtype=np.int32)
        self.left, self.top, self.scale = browser.execute_script(
            "const img = document.getElementById('preview'), r = img.getBoundingClientRect();"
            "return [r.left, r.top, r.width / img.naturalWidth];"
        )

    def box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Image pixels -> screenshot pixels."""
        x0, y0, x1, y1 = (round(v * self.scale) for v in box)
        left, top = round(self.left), round(self.top)
        return x0 + left, y0 + top, x1 + left, y1 + top

    def mask(self, colour: tuple[int, int, int]) -> np.ndarray:
        """Where the screenshot shows `colour` (anti-aliased edges aside)."""
        return ((self.pixels - colour) ** 2).sum(axis=2) <= 60**2

    def edge_coverage(self, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> float:
        """Over the four edges of `box` (image pixels), the least share of places along the edge
        with a pixel of `colour` just across it: 1.0 is an outline drawn all round."""
        x0, y0, x1, y1 = self.box(box)
        out, into = 9, 5  # screen pixels: the detector's box is a few pixels off the ink
        mask = self.mask(colour)
        inset = max(3, (x1 - x0) // 10)
        xs, ys = slice(x0 + inset, x1 - inset), slice(y0 + 3, y1 - 3)
        return min(
            mask[y0 - out : y0 + into, xs].any(axis=0).mean(),  # top
            mask[y1 - into : y1 + out, xs].any(axis=0).mean(),  # bottom
            mask[ys, x0 - out : x0 + into].any(axis=1).mean(),  # left
            mask[ys, x1 - into : x1 + out].any(axis=1).mean(),  # right
        )

    def count(self, box: tuple[int, int, int, int], *colours: tuple[int, int, int]) -> int:
        """Pixels of any of `colours` inside `box` (image pixels)."""
        x0, y0, x1, y1 = self.box(box)
        return int(sum(self.mask(colour)[y0:y1, x0:x1].sum() for colour in colours))


def test_reads_an_upload_and_draws_each_line_where_it_is(browser, server, two_blocks):
    path, drawn = two_blocks
    open_page(browser, server.url)
    upload(browser, path)
    wait_for_answer(browser)

    assert browser.find_element("id", "error").is_displayed() is False
    text = browser.find_element("id", "text").text
    for line in ENGLISH + CHINESE:
        assert squash(line) in squash(text), f"{line!r} not shown in {text!r}"
    # One paragraph per block; the Chinese one marked so, which picks Chinese glyphs.
    langs = browser.execute_script(
        "return [...document.querySelectorAll('#text .block')].map(p => p.lang)"
    )
    assert langs == ["", "zh"]
    assert not browser.find_element("id", "no-preview").is_displayed()  # the image is shown
    stats = browser.find_element("id", "stats").text
    assert "Peak RSS" in stats and "Total" in stats and "Blocks\n2" in stats

    screen = Screen(browser)
    for line in ENGLISH:
        assert screen.edge_coverage(drawn[line], FIRST_BLOCK) > 0.8, line
        assert screen.count(drawn[line], SECOND_BLOCK) == 0, line
    for line in CHINESE:
        assert screen.edge_coverage(drawn[line], SECOND_BLOCK) > 0.8, line
        assert screen.count(drawn[line], FIRST_BLOCK) == 0, line
    # Nothing drawn where there is no text: right of the lines, and between the blocks.
    assert screen.count((560, 0, 1000, 700), FIRST_BLOCK, SECOND_BLOCK) == 0
    assert screen.count((0, 200, 1000, 380), FIRST_BLOCK, SECOND_BLOCK) == 0
    assert console_errors(browser) == []

    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        screen.image.save(SCREENSHOT, optimize=True)


def test_the_copy_button_copies_the_text(browser, server, two_blocks):
    path, _ = two_blocks
    expected = requests.post(
        server.url, files={"file": ("receipt.png", path.read_bytes(), "image/png")}, timeout=60
    ).json()["text"]
    open_page(browser, server.url)
    upload(browser, path)
    wait_for_answer(browser)
    browser.find_element("id", "copy").click()
    # Paste it somewhere the test can read: a text box added for the purpose.
    browser.execute_script(
        "const box = document.createElement('textarea'); box.id = 'pasted';"
        "document.body.prepend(box); box.focus();"
    )
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("v").key_up(Keys.CONTROL).perform()

    assert browser.find_element("id", "pasted").get_attribute("value") == expected


@pytest.mark.parametrize("event", ["drop", "paste"])
def test_a_dropped_or_pasted_image_is_read(browser, server, event):
    png = render.encode(render.page(ENGLISH).image, "PNG")
    open_page(browser, server.url)
    # The events a browser fires for a real drop or paste, carrying a real file.
    browser.execute_script(
        """
        const [kind, encoded] = arguments;
        const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "scan.png", { type: "image/png" }));
        const init = { bubbles: true, cancelable: true };
        const target = document.getElementById("drop");
        target.dispatchEvent(kind === "drop"
            ? new DragEvent("drop", { ...init, dataTransfer: data })
            : new ClipboardEvent("paste", { ...init, clipboardData: data }));
        """,
        event,
        base64.b64encode(png).decode(),
    )
    wait_for_answer(browser)

    assert squash("".join(ENGLISH)) == squash(browser.find_element("id", "text").text)


def test_a_file_that_is_not_an_image_shows_the_api_error(browser, server, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    api = requests.post(
        server.url, files={"file": ("notes.txt", path.read_bytes(), "text/plain")}, timeout=60
    )
    assert api.status_code == 400
    open_page(browser, server.url)
    upload(browser, path)
    wait_for_answer(browser)

    error = browser.find_element("id", "error")
    assert error.is_displayed() and not browser.find_element("id", "result").is_displayed()
    assert error.text.splitlines() == [
        f"400 {api.json()['error']['code']}",
        api.json()["error"]["message"],
    ]


def test_a_file_over_the_limit_shows_413(browser, servers, tmp_path):
    server = servers(MAX_IMAGE_BYTES="200000")  # shared with tests/test_errors.py
    path = tmp_path / "big.png"
    path.write_bytes(render.noise_png((400, 400)))
    assert path.stat().st_size > 200_000
    open_page(browser, server.url)
    upload(browser, path)
    wait_for_answer(browser)

    error = browser.find_element("id", "error").text
    assert error.startswith("413 too_large\n") and "MAX_IMAGE_BYTES (200,000 bytes)" in error


def test_keyboard_and_a_phone_sized_screen(browser, server, two_blocks):
    path, _ = two_blocks
    browser.set_window_size(390, 844)
    try:
        open_page(browser, server.url)
        ActionChains(browser).send_keys(Keys.TAB).perform()
        # The first stop is the file picker itself, named by its label.
        assert browser.execute_script("return document.activeElement.id") == "file"
        assert browser.execute_script(
            "return document.activeElement.labels[0].textContent"
        ).startswith("Choose, drop or paste")
        upload(browser, path)
        wait_for_answer(browser)

        layout = browser.execute_script(
            "const r = (id) => document.getElementById(id).getBoundingClientRect();"
            "return [document.documentElement.scrollWidth, window.innerWidth,"
            " r('preview').right, r('preview').bottom, r('text').top];"
        )
        scroll_width, viewport, image_right, image_bottom, text_top = layout
        assert scroll_width <= viewport, "the page scrolls sideways on a phone"
        assert image_right <= viewport and text_top >= image_bottom  # stacked, not squeezed
    finally:
        browser.set_window_size(*WINDOW)


def test_a_pdf_shows_each_pages_text_in_order_and_says_there_is_no_preview(
    browser, server, tmp_path
):
    path = tmp_path / "mixed.pdf"
    path.write_bytes(pdfs.pdf([pdfs.TextPage(ENGLISH), pdfs.ScanPage(SCANNED)]))
    console_errors(browser)  # drop what earlier tests logged: only this page's errors count
    open_page(browser, server.url)
    upload(browser, path)
    wait_for_answer(browser)

    assert not browser.find_element("id", "error").is_displayed()
    sections = browser.find_elements("css selector", "#text section.page")
    headings = [section.find_element("tag name", "h3").text for section in sections]
    assert headings == ["Page 1 of 2 · text layer", "Page 2 of 2 · read by OCR"]
    first, second = (squash(section.text) for section in sections)
    assert all(squash(line) in first for line in ENGLISH), first
    assert all(squash(line) in second for line in SCANNED), second
    assert not any(squash(line) in first for line in SCANNED)
    assert not any(squash(line) in second for line in ENGLISH)
    stats = browser.find_element("id", "stats").text
    assert "Pages\n2" in stats and "Peak RSS" in stats and "Total" in stats
    assert "not read" not in stats
    # No image is shown for a PDF (an <img> cannot draw one): the page says so instead.
    assert not browser.find_element("id", "figure").is_displayed()
    note = browser.find_element("id", "no-preview")
    assert note.is_displayed() and note.text.startswith("No preview")
    assert console_errors(browser) == []
