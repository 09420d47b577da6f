"""What MAX_SIDE costs in small text: an A4 page at 300 dpi with text of one size, per MAX_SIDE.

    python -m bench.small_text

MAX_SIDE shrinks the page before the model sees it (2480x3508 -> 1600 px tall is a scale of
0.46), so text that is small on the page becomes too small to read. For each font size, a page
of ten lines of that size (Pillow's bundled font; the size is its em in pixels of the page) goes
to every configuration in turn, one request at a time, in one run: rapidocr's defaults at full
resolution as the baseline, and MAX_SIDE 1280 / 1600 (the default) / 2000 / 2560. Scores are
words F1 (case-insensitive bag of words) and bag-of-characters F1 against the drawn text; with
each, the response's own peak RSS and OCR time. Writes bench/results/small_text.json and a
Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from bench.harness import CONFIGS, bag_f1, normalise, ocr
from tests import render
from tests.conftest import start_server

SIZES = [14, 18, 22, 28, 36]
CONFIGURATIONS = {
    name: CONFIGS[name] for name in ("defaults", "max_side_1280", "max_side_1600", "max_side_2000")
}
CONFIGURATIONS["max_side_2560"] = {"MAX_SIDE": "2560"}
NAMES = list(CONFIGURATIONS)


def page(size: int) -> tuple[bytes, str]:
    lines = [
        f"Line {i} of size {size}: invoice {1000 + i} total {i * 7}.{i}0 EUR paid"
        for i in range(10)
    ]
    drawn = render.page(lines, size=(2480, 3508), font_size=size, origin=(150, 150)).image
    return render.encode(drawn, "PNG"), "\n".join(lines)


def words_f1(truth: str, found: str) -> float:
    t, f = Counter(truth.lower().split()), Counter(found.lower().split())
    common = sum((t & f).values())
    if not common:
        return 0.0
    precision, recall = common / sum(f.values()), common / sum(t.values())
    return round(2 * precision * recall / (precision + recall), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/small_text.json"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            name: start_server(Path(tmp), LOG_LEVEL="WARNING", **env)
            for name, env in CONFIGURATIONS.items()
        }
        try:
            for size in SIZES:
                data, truth = page(size)
                for name, server in servers.items():
                    body = ocr(server, data)
                    rows.append(
                        {
                            "font_px": size,
                            "config": name,
                            "words_f1": words_f1(truth, body["text"]),
                            "bag_f1": round(bag_f1(normalise(truth), normalise(body["text"])), 3),
                            "ocr_ms": body["timings_ms"]["ocr"],
                            "peak_rss_mb": body["memory"]["peak_rss_mb"],
                        }
                    )
                    print(rows[-1], flush=True)
        finally:
            for server in servers.values():
                server.stop()
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| font px on the page | " + " | ".join(NAMES) + " |")
    print("|---" * (len(NAMES) + 1) + "|")
    for size in SIZES:
        cells = [
            f"{r['words_f1']:.2f} / {r['bag_f1']:.2f}, "
            f"{r['peak_rss_mb']:.0f} MB, {r['ocr_ms']:.0f} ms"
            for name in NAMES
            for r in rows
            if r["font_px"] == size and r["config"] == name
        ]
        print(f"| {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
