"""Languages (issue 20): rendered lines and pages in twelve languages, and real scanned lines.

    python -m bench.languages [--configs shipped,v6,defaults,tesseract] [--real DIR]
        [--limit N] [--cpus 1]

Rendered: six sentences per language (de fr es pt it pl cs hu tr sv vi, and Japanese), each
drawn as a line on its own in two of four real fonts (DejaVu Sans and Serif, Liberation Serif
and Sans from Debian; Japanese in WenQuanYi Micro Hei, the tests' CJK font, which has kana) at
18-40 px, and the six together as a page in three font and size pairs; every image with light
noise (Gaussian, sigma 8, and a slight blur), fixed seeds. Real: `--real` names a folder of
scanned line images with their transcriptions (`NAME.png` + `NAME.gt.txt`): OCR17's 19th-century
French test lines (docs/languages.md says where they come from); `¬`, the transcriptions' sign
for a line-end hyphen, is scored as the `-` printed there.

Every image goes to every configuration in turn (each a functions-framework process, as
`bench.accuracy` runs them) and to Tesseract with the image's own language pack. Scores per image:
words exact (the share of the reference's words, NFC and case-sensitive, punctuation kept, `’`
and `'` alike, found among the words read: a bag, so order does not count; for Japanese, written
without spaces, the share of its characters), words F1, CER and CPU seconds. Writes
bench/results/languages.json and Markdown tables on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import collections
import importlib.resources
import io
import json
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench import harness, setup
from bench.harness import TESSERACT, mean, median

SENTENCES = {
    "de": [
        "Größere Straßenbahn fährt über Brücken.",
        "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.",
        "Die Rechnung vom 14. März beträgt 1.284,50 €.",
        "Bitte überweisen Sie den Betrag bis zum Monatsende.",
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
        "Öffnungszeiten: Montag bis Freitag, 9 bis 18 Uhr.",
    ],
    "fr": [
        "Où est la forêt ? Ça déçoit l'œil.",
        "Portez ce vieux whisky au juge blond qui fume.",
        "Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter en canoë.",
        "La facture n° 2026-17 est payable à réception.",
        "Voilà pourquoi l'hôpital ferme à midi.",
        "Les élèves étudient près de la fenêtre.",
    ],
    "es": [
        "El niño español comió piñas.",
        "El veloz murciélago hindú comía feliz cardillo y kiwi.",
        "La cigüeña tocaba el saxofón detrás del palenque de paja.",
        "¿Cuánto cuesta el envío a Cádiz?",
        "Factura número 381, total: 96,40 €.",
        "Mañana habrá reunión en la oficina.",
    ],
    "pt": [
        "A ação não terminou às três horas.",
        "Luís argumentava à Júlia que brações são raros.",
        "O pagamento será efetuado até o próximo mês.",
        "Informações sobre a instalação elétrica.",
        "Não há cães no coração da cidade.",
        "Ônibus e trânsito às sextas-feiras.",
    ],
    "it": [
        "Perché è così difficile città.",
        "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
        "La fattura è già stata pagata lunedì.",
        "Più tardi andrò all'università.",
        "Cioè, né lui né lei hanno capito.",
        "Il caffè costa 1,20 € al bancone.",
    ],
    "pl": [
        "Zażółć gęślą jaźń w Łodzi.",
        "Pchnąć w tę łódź jeża lub ośm skrzyń fig.",
        "Faktura zostanie wysłana w przyszłym tygodniu.",
        "Żółta łódka płynęła po jeziorze.",
        "Proszę o potwierdzenie odbioru przesyłki.",
        "Członkowie zarządu spotkają się w środę.",
    ],
    "cs": [
        "Příliš žluťoučký kůň úpěl ďábelské ódy.",
        "Faktura byla zaplacena v úterý.",
        "Dobrý den, jak se máte?",
        "Řidič zastavil před nádražím.",
        "Účet za elektřinu přišel včera.",
        "Nejbližší pošta je na náměstí.",
    ],
    "hu": [
        "Árvíztűrő tükörfúrógép ősszel.",
        "A számla összege négyezer forint.",
        "Kérjük, fizessen időben.",
        "Öt szép szűz lány őrült írót nyúz.",
        "A vonat délután érkezik Győrbe.",
        "Köszönöm szépen a segítséget.",
    ],
    "tr": [
        "Şişli'de ılık güneş ağaçları çiçeklendirdi.",
        "Pijamalı hasta yağız şoföre çabucak güvendi.",
        "Fatura tutarı ödendi mi?",
        "Öğrenciler sınıfta ders çalışıyor.",
        "Lütfen kapıyı kapatınız.",
        "İstanbul'da hava güneşli.",
    ],
    "sv": [
        "Hämta öl på färjan i Åre.",
        "Flygande bäckasiner söka hwila på mjuka tuvor.",
        "Fakturan ska betalas före månadens slut.",
        "Vi ses på måndag efter lunch.",
        "Köp två äpplen och en gurka.",
        "Räkningen är redan betald.",
    ],
    "vi": [
        "Tiếng Việt có dấu rất khó đọc.",
        "Hóa đơn đã được thanh toán.",
        "Xin cảm ơn quý khách.",
        "Hà Nội là thủ đô của Việt Nam.",
        "Chúng tôi sẽ gửi hàng vào thứ hai.",
        "Giá tiền là năm mươi nghìn đồng.",
    ],
    "ja": [
        "ひらがなとカタカナの文章です。",
        "東京都千代田区丸の内一丁目",
        "請求書を送付いたします。",
        "お問い合わせはメールでお願いします。",
        "コーヒーとケーキを注文した。",
        "明日の会議は午後三時からです。",
    ],
}
TESSERACT_LANGUAGES = {
    "de": "deu",
    "fr": "fra",
    "es": "spa",
    "pt": "por",
    "it": "ita",
    "pl": "pol",
    "cs": "ces",
    "hu": "hun",
    "tr": "tur",
    "sv": "swe",
    "vi": "vie",
    "ja": "jpn",
}
FONTS = {  # Debian's fonts-dejavu-core and fonts-liberation
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVu Serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "Liberation Serif": "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "Liberation Sans": "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
}
LINE_SIZES = (18, 24, 32, 40)
PAGE_STYLES = (("DejaVu Sans", 20), ("Liberation Serif", 28), ("DejaVu Serif", 36))
DEFAULT_CONFIGS = f"shipped,v6,defaults,{TESSERACT}"


def cjk_font_path() -> str:
    return str(importlib.resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc")


def draw(lines: list[str], font_path: str, size: int, seed: int) -> bytes:
    """Black text on white with a margin, light noise and blur; PNG bytes."""
    font = ImageFont.truetype(font_path, size)
    width = int(max(font.getlength(line) for line in lines)) + 4 * size
    height = int(len(lines) * size * 1.8) + 3 * size
    image = Image.new("L", (width, height), 255)
    canvas = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        canvas.text((2 * size, int(1.5 * size + i * size * 1.8)), line, font=font, fill=0)
    image = image.filter(ImageFilter.GaussianBlur(0.5))
    noise = np.random.default_rng(seed).normal(0, 8, (height, width))
    pixels = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(out, "PNG")
    return out.getvalue()


def rendered() -> list[dict]:
    """Every rendered image: {set, language, name, truth, data}."""
    names = list(FONTS)
    items = []
    for language, sentences in SENTENCES.items():
        for i, sentence in enumerate(sentences):
            for k in range(2):  # two font and size pairs per sentence, all four fonts used
                font = names[(i + 2 * k) % len(names)]
                size = LINE_SIZES[(i + k) % len(LINE_SIZES)]
                path = cjk_font_path() if language == "ja" else FONTS[font]
                label = "WenQuanYi Micro Hei" if language == "ja" else font
                items.append(
                    {
                        "set": "rendered lines",
                        "language": language,
                        "name": f"{language} line {i} {label} {size}px",
                        "truth": sentence,
                        "data": draw([sentence], path, size, seed=len(items)),
                    }
                )
        for font, size in PAGE_STYLES:
            path = cjk_font_path() if language == "ja" else FONTS[font]
            items.append(
                {
                    "set": "rendered pages",
                    "language": language,
                    "name": f"{language} page {font} {size}px",
                    "truth": "\n".join(sentences),
                    "data": draw(sentences, path, size, seed=len(items)),
                }
            )
    return items


def spread(items: list[dict], data_set: str, limit: int | None) -> list[dict]:
    """`limit` of the set's items, evenly spaced over it (every language keeps its share)."""
    mine = [i for i in items if i["set"] == data_set]
    if not limit or limit >= len(mine):
        return mine
    return [mine[k * len(mine) // limit] for k in range(limit)]


def real(folder: Path) -> list[dict]:
    """Scanned lines with their transcriptions (OCR17's Testing_data/XIX: French)."""
    items = []
    for path in sorted(folder.glob("*.png")):
        truth_path = path.with_name(path.stem + ".gt.txt")
        if not truth_path.exists():
            continue
        truth = truth_path.read_text(encoding="utf-8").strip().replace("¬", "-")
        if len(truth.split()) < 2:  # page numbers, single letters: not reading text
            continue
        items.append(
            {
                "set": "real lines (OCR17 XIX, French)",
                "language": "fr",
                "name": path.name,
                "truth": truth,
                "data": path.read_bytes(),
                "path": path,
            }
        )
    return items


APOSTROPHES = str.maketrans("’‘", "''")  # typographic and typewriter forms: one character


def units(text: str, language: str) -> list[str]:
    """What 'words exact' counts: words (NFC, as written), or characters for Japanese."""
    text = unicodedata.normalize("NFC", text).translate(APOSTROPHES)
    return [c for c in text if not c.isspace()] if language == "ja" else text.split()


def words_exact(truth: str, found: str, language: str) -> float:
    expected, read = (
        collections.Counter(units(truth, language)),
        collections.Counter(units(found, language)),
    )
    return sum((expected & read).values()) / max(1, sum(expected.values()))


def read(name: str, servers: dict, item: dict, tmp: Path) -> harness.Reading:
    if name != TESSERACT:
        return harness.read_with_function(servers[name], item["data"])
    path = item.get("path")
    if path is None:
        path = tmp / "image.png"
        path.write_bytes(item["data"])
    one_line = "line" in item["set"]
    return harness.read_with_tesseract(
        path, TESSERACT_LANGUAGES[item["language"]], 7 if one_line else None
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--real", type=Path, default=None, help="OCR17's Testing_data/XIX")
    parser.add_argument("--limit", type=int, default=None, help="images per set, spread over it")
    parser.add_argument("--no-rendered", action="store_true")
    parser.add_argument("--cpus", type=int, default=None)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/languages.json"
    )
    args = parser.parse_args()
    names = harness.config_names(args.configs)
    cpus = harness.pin_cpus(args.cpus)
    tesseract_version = None
    try:
        setup.ensure_fonts(list(FONTS.values()))
        if TESSERACT in names:
            tesseract_version = setup.ensure_tesseract(set(TESSERACT_LANGUAGES.values()))
    except setup.SetupError as error:
        sys.exit(setup.explain(error))
    items = [] if args.no_rendered else rendered()
    if args.real is not None:
        items += real(args.real)
    items = [
        i for s in dict.fromkeys(i["set"] for i in items) for i in spread(items, s, args.limit)
    ]

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        function_names = [n for n in names if n != TESSERACT]
        servers = harness.start(Path(tmp), function_names)
        warm_up = draw(["Warm up 2026"], FONTS["DejaVu Sans"], 32, seed=0)
        for server in servers.values():
            harness.ocr(server, warm_up)
        started = time.monotonic()
        try:
            for number, item in enumerate(items, 1):
                for name in names:
                    reading = read(name, servers, item, Path(tmp))
                    scores = harness.score(item["truth"], reading.text)
                    rows.append(
                        {
                            "set": item["set"],
                            "language": item["language"],
                            "image": item["name"],
                            "config": name,
                            "words_exact": round(
                                words_exact(item["truth"], reading.text, item["language"]), 4
                            ),
                            **scores,
                            "cpu_s": reading.cpu_s,
                            "peak_rss_mb": reading.peak_rss_mb,
                            "truth": item["truth"],
                            "text": reading.text,
                        }
                    )
                if number % 10 == 0 or number == len(items):
                    print(
                        f"{number}/{len(items)} ({time.monotonic() - started:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    meta = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "configs": {n: harness.CONFIGS.get(n, TESSERACT_LANGUAGES) for n in names},
        "tesseract": tesseract_version,
        "cpus": cpus,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, ensure_ascii=False))
    print(table(rows, names))


def table(rows: list[dict], names: list[str]) -> str:
    """Per set and language, per configuration: words exact (pooled), words F1, CER, CPU."""
    lines = [
        "| set | language | images | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    keys = list(dict.fromkeys((r["set"], r["language"]) for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    groups = [
        (s, lang, [r for r in rows if (r["set"], r["language"]) == (s, lang)]) for s, lang in keys
    ]
    groups += [(s, "all", [r for r in rows if r["set"] == s]) for s in sets]
    for data_set, language, mine in groups:
        cells = []
        for name in names:
            r = [row for row in mine if row["config"] == name]
            weights = [len(units(row["truth"], row["language"])) for row in r]
            exact = sum(w * row["words_exact"] for w, row in zip(weights, r, strict=True))
            f1, cer = mean([x["words_f1"] for x in r]), mean([x["cer"] for x in r])
            cpu = median([x["cpu_s"] for x in r])
            cells.append(
                f"{exact / max(1, sum(weights)):.1%} · F1 {f1:.3f} · CER {cer:.3f} · {cpu:.2f} s"
            )
        count = len(mine) // max(1, len(names))
        lines.append(f"| {data_set} | {language} | {count} | " + " | ".join(cells) + " |")
    note = (
        "\nEach cell: words exact (pooled over the images: the reference's words found, NFC, "
        "case-sensitive; Japanese: characters) · words F1 (mean) · CER (mean, NFKC, whitespace "
        "removed) · CPU s (median per image)."
    )
    return "\n".join(lines) + note


if __name__ == "__main__":
    main()
