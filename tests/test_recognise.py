"""Recognise and space: one line cut out and read, with its characters' places and word gaps."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from function import recognise, spacing
from tests import render


def line_image(text: str, font, size=(900, 70), tracking: int = 0) -> np.ndarray:
    """Black text on white, drawn character by character with `tracking` px between them."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    x = 12
    for char in text:
        draw.text((x, 8), char, fill="black", font=font)
        x += draw.textlength(char, font=font) + tracking
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def whole(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])


def read(image: np.ndarray, models) -> tuple[recognise.Reading, str]:
    line = recognise.crop(image, whole(image))
    reading = recognise.read(line, models.recogniser, models.alphabet)
    return reading, spacing.spaced(reading, line)


def test_characters_come_with_their_places_in_the_crop(models):
    image = line_image("Invoice 2026", render.latin_font(40), size=(400, 60))
    reading, _ = read(image, models)

    assert reading.text.replace(" ", "") == "Invoice2026"
    assert len(reading.centres) == len(reading.text)
    assert list(reading.centres) == sorted(reading.centres)
    assert 0 < reading.centres[0] < reading.centres[-1] < image.shape[1]
    assert 0.5 < reading.score <= 1.0


def test_an_english_sentence_keeps_its_word_spaces(models):
    sentence = "Document No: TD01167104 dated 25/12/2018 8:13:39 PM"
    _, text = read(line_image(sentence, render.latin_font(36), size=(1100, 60)), models)
    assert text.split() == sentence.split()


def test_widely_tracked_receipt_print_keeps_words_whole(models):
    # Thermal receipts space their letters far apart; words are further apart still.
    printed = "KF MODELLING CLAY KIDDY FISH"
    image = line_image(printed, render.latin_font(30), size=(1100, 56), tracking=8)
    _, text = read(image, models)
    assert text.split() == printed.split()


def test_tracked_prices_keep_their_points_and_commas(models):
    printed = "CASH 1,142.40 CHANGE 29.70 QTY 2"
    image = line_image(printed, render.latin_font(30), size=(1100, 56), tracking=8)
    _, text = read(image, models)
    assert text.split() == printed.split()


def test_digits_and_latin_letters_come_back_as_ascii(models):
    # The model has a full-width twin of each (４, Ａ) and picked either; CJK punctuation stays.
    assert not any("\uff10" <= c <= "\uff5a" and c.isalnum() for c in models.alphabet)
    assert {"4", "A", "z", "，", "："} <= set(models.alphabet)


def test_no_space_is_put_between_chinese_characters(models):
    image = line_image("合计金额人民币发票号码", render.cjk_font(40), size=(520, 64))
    reading, text = read(image, models)
    assert text == reading.text.strip() and " " not in text
    assert text == "合计金额人民币发票号码"


def test_gaps_are_measured_only_between_latin_neighbours():
    reading = recognise.Reading("ab合c", 0.9, (10.0, 30.0, 50.0, 70.0), (0.0, 0.0, 0.0))
    line = np.full((20, 80, 3), 255, dtype=np.uint8)
    for centre in (10, 30, 50, 70):  # ink at each character's centre, blank between
        line[5:15, centre - 2 : centre + 2] = 0
    pairs = spacing.measure(reading, line)
    assert pairs[1] is None and pairs[2] is None  # either side of 合
    assert pairs[0] == ((28 - 12) / 10, (30 - 10) / 10)  # blank columns 12..27; 10 rows of text


def test_the_models_own_odds_of_a_space_make_one():
    line = np.full((20, 80, 3), 255, dtype=np.uint8)
    for centre in (10, 30, 50):
        line[5:15, centre - 6 : centre + 6] = 0
    close = recognise.Reading("abc", 0.9, (10.0, 30.0, 50.0), (0.0, 0.0))
    likely = recognise.Reading("abc", 0.9, (10.0, 30.0, 50.0), (0.4, 0.0))
    assert spacing.spaced(close, line) == "abc"
    assert spacing.spaced(likely, line) == "a bc"


def test_no_space_goes_inside_a_number():
    line = np.full((20, 130, 3), 255, dtype=np.uint8)
    for centre in (10, 40, 70, 100):  # far apart, as tracked receipt print is
        line[5:15, centre - 2 : centre + 2] = 0
    centres, odds = (10.0, 40.0, 70.0, 100.0), (0.0, 0.5, 0.0)
    assert spacing.spaced(recognise.Reading("9.90", 0.9, centres, odds), line) == "9.90"
    assert spacing.spaced(recognise.Reading("a.bc", 0.9, centres, odds), line) == "a. bc"
    assert spacing.spaced(recognise.Reading("9,90", 0.9, centres, odds), line) == "9,90"


def test_a_comma_before_a_year_keeps_its_space():
    line = np.full((20, 190, 3), 255, dtype=np.uint8)
    centres = (10.0, 40.0, 70.0, 100.0, 130.0, 160.0)
    for centre in centres:
        line[5:15, int(centre) - 2 : int(centre) + 2] = 0
    odds = (0.0, 0.5, 0.0, 0.0, 0.0)
    assert spacing.spaced(recognise.Reading("5,2020", 0.9, centres, odds), line) == "5, 2020"


def test_a_line_too_wide_for_one_pass_is_read_in_pieces_and_joined(models):
    sentence = "Order 5521 shipped to 14 Harbour Road on 3 March 2026 with care"
    text = " and ".join([sentence] * 4)
    image = line_image(text, render.latin_font(22), size=(3100, 34))
    line = recognise.crop(image, whole(image))
    assert recognise.HEIGHT * line.shape[1] / line.shape[0] > recognise.MAX_WIDTH  # 2 pieces

    reading = recognise.read(line, models.recogniser, models.alphabet)

    assert list(reading.centres) == sorted(reading.centres)
    assert len(reading.space_odds) == len(reading.text) - 1
    assert spacing.spaced(reading, line) == text
