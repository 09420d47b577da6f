"""The benchmarks' scoring (bench/harness.py): what each figure counts, on strings made here."""

from __future__ import annotations

import pytest

from bench import harness
from bench.accuracy import SEPARATOR_DOTS, WRONG, page_kind


def test_normalise_applies_nfkc_and_drops_all_whitespace():
    # full-width letters and digits, an ideographic space, a ligature
    assert harness.normalise("ＡＢ１\u3000 c\td\nﬁ") == "AB1cdfi"


def test_cer_counts_edits_against_the_truths_length():
    assert harness.cer("abcd", "abcd") == 0.0
    assert harness.cer("abcd", "abxd") == 0.25
    assert harness.cer("abcd", "") == 1.0
    assert harness.cer("ab", "abab") == 1.0  # insertions count too: CER can pass 1


def test_cer_is_order_sensitive_and_bag_f1_is_not():
    assert harness.cer("abcd", "cdab") == 1.0
    assert harness.bag_f1("abcd", "cdab") == 1.0


def test_bag_f1_is_the_harmonic_mean_of_precision_and_recall():
    # found "abx": 2 of 3 found are right (precision 2/3), 2 of 4 true are found (recall 1/2)
    assert harness.bag_f1("abcd", "abx") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert harness.bag_f1("aab", "ab") == pytest.approx(0.8)  # counts, not sets
    assert harness.bag_f1("abc", "") == 0.0


def test_words_f1_counts_a_glued_pair_as_wrong_and_ignores_case():
    truth = "KF MODELLING CLAY"
    assert harness.score(truth, "kf modelling clay")["words_f1"] == 1.0
    glued = harness.score(truth, "KFMODELLING CLAY")
    # 1 of 2 found words is right (precision 1/2), 1 of 3 true words is found (recall 1/3)
    assert glued["words_f1"] == pytest.approx(0.4)
    assert glued["bag_f1"] == 1.0  # the characters are all there


def test_words_are_nfkc_normalised_and_split_on_any_whitespace():
    assert harness.words("ＴＯＴＡＬ\u300042.50\nRM") == ["total", "42.50", "rm"]


def test_score_case_insensitive_is_for_characters_only_when_asked():
    assert harness.score("TOTAL", "Total")["exact"] is False
    assert harness.score("TOTAL", "Total", case_insensitive=True)["exact"] is True
    assert harness.score("TOTAL", "Total")["words_f1"] == 1.0  # words: always


def test_a_plates_separator_dot_is_ignored_when_asked():
    assert harness.score("皖A12345", "皖A·12345", ignore=SEPARATOR_DOTS)["exact"] is True
    assert harness.score("皖A12345", "皖A·12345", ignore=SEPARATOR_DOTS)["words_f1"] == 1.0
    assert harness.score("皖A12345", "皖A·12345")["exact"] is False


def test_scribe_pages_get_their_kind_from_the_name_wrong_references_apart():
    assert page_kind("scribe_docs", "multicol_08.png") == "prose"
    assert page_kind("scribe_docs", "filing_01.png") == "prose"
    assert page_kind("scribe_docs", "table_10.png") == "table"
    assert page_kind("scribe_docs", "receipt_03.png") == "receipt"
    assert page_kind("scribe_docs", "poster_01.png") == "other"
    assert page_kind("scribe_docs", "deposition_01.png") == WRONG
    assert page_kind("scribe_docs", "table_02.png") == WRONG
    assert page_kind("sroie_receipts", "sroie_000.jpg") is None


def hocr_line(words: list[tuple[str, int, int]], top: int = 0) -> str:
    """An hOCR line of words (text, left, right), 20 pixels high."""
    spans = "".join(
        f"<span class='ocrx_word' title='bbox {left} {top} {right} {top + 20}; x_wconf 90'>"
        f"{text}</span>"
        for text, left, right in words
    )
    return f"<span class='ocr_line' title='bbox 0 {top} 900 {top + 20}'>{spans}</span>"


def test_table_rows_come_from_the_word_boxes_whatever_the_line_order():
    # A reference that reads the table column by column: its lines are the columns' cells.
    hocr = "".join(
        [
            hocr_line([("Date", 0, 60)], top=0),
            hocr_line([("01Aug2018", 0, 120)], top=30),
            hocr_line([("Cheque", 300, 400), ("4987", 420, 480)], top=0),
            hocr_line([("Deposit", 300, 400)], top=30),
            hocr_line([("A", 0, 15), ("heading", 22, 120)], top=60),  # one cell: not a row
        ]
    )

    assert harness.table_rows(hocr) == ["datecheque4987", "01aug2018deposit"]


def test_a_row_is_read_when_its_cells_come_back_on_one_line_in_order():
    rows = ["datecheque4987", "01aug2018deposit"]

    assert harness.rows_read(rows, "Date\tCheque 4987\n01Aug2018\tDeposit") == 2
    assert harness.rows_read(rows, "Date\n01Aug2018\nCheque 4987\nDeposit") == 0
    assert harness.rows_read(rows, "Cheque 4987\tDate\n01Aug2018\tDeposit") == 1


def test_define_adds_a_configuration_by_name():
    try:
        assert harness.define("strips:MAX_SIDE=2000,OCR_THREADS=1") == "strips"
        assert harness.CONFIGS["strips"] == {"MAX_SIDE": "2000", "OCR_THREADS": "1"}
        assert harness.config_names("defaults,strips,tesseract") == [
            "defaults",
            "strips",
            "tesseract",
        ]
    finally:
        harness.CONFIGS.pop("strips", None)
    with pytest.raises(ValueError):
        harness.define("broken:MAX_SIDE")
    with pytest.raises(SystemExit):
        harness.config_names("defaults,nonesuch")
