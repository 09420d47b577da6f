"""OCR_MODEL=v6 over real HTTP: accented Latin and kana read exactly; English, Chinese unchanged.

The lines are drawn in WenQuanYi Micro Hei (the tests' CJK font), which also has Latin Extended
and kana. Accuracy over many fonts, sizes and real scans is bench.languages' (docs/languages.md).
"""

from __future__ import annotations

import unicodedata

import pytest
import requests

from tests import render

LINES = {
    "de": "Größere Straßenbahn fährt über Brücken",
    "pl": "Zażółć gęślą jaźń w Łodzi",
    "es": "El niño español comió piñas",
    "fr": "Où est la forêt? Ça déçoit l'œil",
    "pt": "A ação não terminou às três horas",
    "it": "Perché è così difficile città",
    "tr": "Şişli'de ılık güneş ağaçları",
    "sv": "Hämta öl på färjan i Åre",
    "ja": "ひらがなとカタカナの文章です",
}


@pytest.fixture(scope="module")
def v6(servers):
    return servers(OCR_MODEL="v6")


def read(server, line: str) -> str:
    image = render.page([line], size=(1500, 140), font_size=40, cjk=True).image
    response = server.post(render.encode(image, "PNG"))
    assert response.status_code == 200, response.text
    return response.json()["text"]


@pytest.mark.parametrize("language", sorted(LINES))
def test_v6_reads_the_line_exactly_accents_composed(v6, language):
    text = read(v6, LINES[language])

    assert text == LINES[language]
    assert unicodedata.is_normalized("NFC", text)  # `ö` is one character, not `o` and a mark


def test_v4_the_default_cannot_read_them(server):
    """Why v6 exists: the default's alphabet has no `ł`, `ż`, `ą` or kana."""
    assert read(server, LINES["pl"]) != LINES["pl"]


@pytest.mark.parametrize(
    "line",
    ["Please send the signed contract back to our office by Friday", "合计金额人民币贰佰元整"],
)
def test_an_english_and_a_chinese_line_read_as_v4_reads_them(server, v6, line):
    assert read(v6, line) == read(server, line) == line


def test_the_engine_reports_which_models_it_runs(v6):
    assert requests.get(v6.url, timeout=30).json()["settings"]["ocr_model"] == "v6"
