"""Accuracy, latency and peak memory on the real evaluation sets, per MAX_SIDE, vs the defaults.

    python -m bench.accuracy [--data ../shared/data] [--sets sroie_receipts,...] [--limit N]

Reads the images in place (never copy them into the project) and writes
bench/results/accuracy.json plus a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.harness import CONFIGS, bag_f1, cer, median, normalise, ocr, start

SETS = ["sroie_receipts", "scribe_docs", "zh_pdf_docs", "zh_pdf_slides", "cn_plates"]
CASE_INSENSITIVE = {"sroie_receipts"}


def images(folder: Path, limit: int | None) -> list[Path]:
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return found[:limit] if limit else found


def score(data_set: str, truth: str, found: str) -> dict[str, float]:
    truth, found = normalise(truth), normalise(found)
    if data_set in CASE_INSENSITIVE:
        truth, found = truth.lower(), found.lower()
    return {"cer": cer(truth, found), "bag_f1": bag_f1(truth, found), "exact": truth == found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--limit", type=int, default=None, help="images per set")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/accuracy.json")
    args = parser.parse_args()
    names = args.configs.split(",")

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        servers = start(Path(tmp), names)
        try:
            for data_set in args.sets.split(","):
                for path in images(args.data / data_set, args.limit):
                    truth = path.with_suffix(".txt").read_text(encoding="utf-8")
                    data = path.read_bytes()
                    for name in names:  # side by side: every config sees every image in turn
                        body = ocr(servers[name], data)
                        rows.append(
                            {
                                "set": data_set,
                                "image": path.name,
                                "config": name,
                                **score(data_set, truth, body["text"]),
                                "ocr_ms": body["timings_ms"]["total"],
                                "peak_rss_mb": body["memory"]["peak_rss_mb"],
                            }
                        )
                    print(f"{data_set}/{path.name}", flush=True)
        finally:
            for server in servers.values():
                server.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(table(rows, args.sets.split(","), names))


def table(rows: list[dict], sets: list[str], names: list[str]) -> str:
    lines = [
        "| set | config | images | CER (median) | bag F1 (median) | exact | "
        "OCR ms (median) | peak RSS MB (median / max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data_set in sets:
        for name in names:
            mine = [r for r in rows if r["set"] == data_set and r["config"] == name]
            if not mine:
                continue
            peaks = [r["peak_rss_mb"] for r in mine]
            lines.append(
                f"| {data_set} | {name} | {len(mine)} | {median([r['cer'] for r in mine]):.3f} | "
                f"{median([r['bag_f1'] for r in mine]):.3f} | "
                f"{sum(r['exact'] for r in mine)}/{len(mine)} | "
                f"{median([r['ocr_ms'] for r in mine]):.0f} | "
                f"{median(peaks):.0f} / {max(peaks):.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
