"""The layout step alone, on cached OCR: reading-order CER, table rows and CPU, per page.

    python -m bench.layout_order [--set scribe_docs|sroie_receipts|zh_pdf_docs] [--data DIR]
                                 [--cache DIR] [--show PAGE] [--cpus N]

The engine runs in-process (function.settings.Settings() defaults, decoded as function.pipeline
decodes) once per image; its lines and the CPU time it took are cached in a temporary directory
keyed by the image's bytes, the settings and the engine's and decoder's source, so iterating on
function/layout/ re-runs only the layout (the machine is shared: OCR is the slow part). Each
page's text is scored against its ground truth in the engine's order (top to bottom, left to
right across the whole page) and in the pipeline's (`pipeline.lay_out` with the page's rules:
blocks, rows, cells); "table rows" counts the ground truth's rows of two cells or more that come
back on one line (`harness.rows_read`); "layout CPU ms" is finding the rules and laying out, "OCR
CPU s" decoding and reading, in the same process. Pages in `harness.WRONG_ORDER` (marked †) are
summarised apart. Writes bench/results/layout_order-SET.json; results are in docs/layout.md.
`bench.accuracy` runs the whole function over HTTP, side by side with Tesseract and rapidocr's
defaults; this is the fast loop for the layout step alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.harness import WRONG_ORDER, cer, normalise, pin_cpus, rows_read, table_rows
from function import detect, images, layout, pipeline, recognise, spacing
from function.engine import Engine
from function.settings import Settings
from tests import render

KINDS = {
    "multicol": "prose",
    "deposition": "prose",
    "filing": "prose",
    "singlecol": "prose",
    "slide": "prose",
    "table": "table",
    "form": "table",
    "chart": "table",
    "receipt": "receipt",
    "sroie": "receipt",
}
CASE_INSENSITIVE = {"sroie_receipts"}  # its ground truth is upper case


def kind(name: str) -> str:
    return KINDS.get(name.split("_")[0], "other")


def cached_ocr(path: Path, settings: Settings, cache: Path, engine: Engine) -> dict:
    """The engine's lines for `path`, {"lines": [{"box": 4 corners in original pixels, "text"}],
    "cpu_s": this process's CPU time to decode and read the image}."""
    data = path.read_bytes()
    key = hashlib.sha256(data + json.dumps(asdict(settings), default=str).encode() + b"cpu")
    for module in (images, detect, recognise, spacing):  # a changed step reads again
        key.update(Path(module.__file__).read_bytes())
    cached = cache / f"{path.stem}-{key.hexdigest()[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    started = time.process_time()
    image = images.decode(data, max_side=settings.max_side, max_pixels=settings.max_pixels)
    with engine.session() as models:
        found = pipeline.read(image, models)
    cpu_s = time.process_time() - started
    lines = [{"box": line.box, "text": line.text} for line in found]
    print(f"  OCR {path.name}: {len(lines)} lines, {cpu_s:.1f} CPU s")
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"lines": lines, "cpu_s": cpu_s}))
    return {"lines": lines, "cpu_s": cpu_s}


def laid_out_text(lines: list[dict], rules: layout.Rules) -> tuple[str, int]:
    """The text as the pipeline returns it, and how many blocks."""
    found = [pipeline.Line(line["text"], 1.0, line["box"]) for line in lines]
    ordered, blocks = pipeline.lay_out(found, rules)
    return "\n\n".join(block.text(ordered) for block in blocks), len(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--set", default="scribe_docs")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "layout-ocr")
    parser.add_argument("--show", default="", help="print the laid-out text of this page")
    parser.add_argument("--cpus", type=int, default=None, help="pin to the first N CPUs")
    args = parser.parse_args()

    pin_cpus(args.cpus)
    settings = Settings()
    engine = Engine(settings)
    warm_up = render.encode(render.page(["Warm up"]).image, "PNG")
    with engine.session() as models:  # loading the models is not what a page costs
        pipeline.read(images.decode(warm_up, max_side=None, max_pixels=10**7), models)
    folder = args.data / args.set
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    rows = []
    for path in paths:
        ocr = cached_ocr(path, settings, args.cache, engine)
        lines = ocr["lines"]
        truth = path.with_suffix(".txt").read_text(encoding="utf-8")
        image = images.decode(
            path.read_bytes(), max_side=settings.max_side, max_pixels=settings.max_pixels
        )
        started = time.process_time()
        rules = layout.find(image.bgr, image.to_original)
        text, blocks = laid_out_text(lines, rules)
        layout_ms = (time.process_time() - started) * 1000
        del image
        if path.stem == args.show:
            print(text)
        hocr = path.with_suffix(".gt.hocr")
        # Rows of cells only on tables: on prose pages they are lines of two columns side by side
        tabular = kind(path.stem) == "table"
        reference_rows = table_rows(hocr.read_text()) if hocr.exists() and tabular else []
        today_text = "\n".join(line["text"] for line in lines)
        truth_n, today, laid = normalise(truth), normalise(today_text), normalise(text)
        if args.set in CASE_INSENSITIVE:
            truth_n, today, laid = truth_n.lower(), today.lower(), laid.lower()
        rows.append(
            {
                "page": path.stem,
                "kind": kind(path.stem),
                "wrong_order": path.stem in WRONG_ORDER.get(args.set, {}),
                "lines": len(lines),
                "blocks": blocks,
                "chars": len(truth_n),
                "today": cer(truth_n, today),
                "layout": cer(truth_n, laid),
                "rows": len(reference_rows),
                "rows_today": rows_read(reference_rows, today_text),
                "rows_layout": rows_read(reference_rows, text),
                "ms": layout_ms,
                "ocr_cpu_s": ocr["cpu_s"],
            }
        )
    print(table(rows))
    shares = [r["ms"] / 1000 / r["ocr_cpu_s"] for r in rows if r["ocr_cpu_s"]]
    print(
        f"\nlayout CPU over OCR CPU, per page: median {statistics.median(shares):.2%}, "
        f"max {max(shares):.2%}"
    )
    out = Path(__file__).parent / f"results/layout_order-{args.set}.json"
    out.write_text(json.dumps(rows, indent=1))


def table(rows: list[dict]) -> str:
    out = [
        "| page | kind | lines | blocks | CER today | CER layout | table rows today | "
        "table rows layout | layout CPU ms | OCR CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " (worse)" if r["layout"] > r["today"] + 1e-9 else ""
        wrong = " †" if r["wrong_order"] else ""
        out.append(
            f"| {r['page']}{wrong} | {r['kind']} | {r['lines']} | {r['blocks']} | "
            f"{r['today']:.3f} | {r['layout']:.3f}{flag} | {fraction(r, 'rows_today')} | "
            f"{fraction(r, 'rows_layout')} | {r['ms']:.1f} | {r['ocr_cpu_s']:.2f} |"
        )
    groups = {"all pages": [r for r in rows if not r["wrong_order"]]}
    for name in ("prose", "table", "receipt", "other"):
        groups[name] = [r for r in rows if r["kind"] == name and not r["wrong_order"]]
    groups["† reference order wrong"] = [r for r in rows if r["wrong_order"]]
    out.append("")
    out.append(
        "| pages | n | CER today (mean / median / pooled) | CER layout (mean / median / pooled) "
        "| worst page (layout) | table rows today / layout | worse than today |"
    )
    out.append("|---|---|---|---|---|---|---|")
    for name, group in groups.items():
        if not group:
            continue
        worse = sum(r["layout"] > r["today"] + 1e-9 for r in group)
        worst = max(group, key=lambda r: r["layout"])
        total = sum(r["rows"] for r in group)
        found = (sum(r["rows_today"] for r in group), sum(r["rows_layout"] for r in group))
        out.append(
            f"| {name} | {len(group)} | {summary(group, 'today')} | {summary(group, 'layout')} "
            f"| {worst['page']} {worst['layout']:.3f} | "
            f"{found[0]}/{total} / {found[1]}/{total} | {worse} |"
        )
    return "\n".join(out)


def fraction(row: dict, key: str) -> str:
    return f"{row[key]}/{row['rows']}" if row["rows"] else ""


def summary(rows: list[dict], order: str) -> str:
    """Mean and median of the pages' CER, and the pooled CER (all edits over all characters)."""
    values = [r[order] for r in rows]
    pooled = sum(r[order] * r["chars"] for r in rows) / max(1, sum(r["chars"] for r in rows))
    return f"{statistics.mean(values):.3f} / {statistics.median(values):.3f} / {pooled:.3f}"


if __name__ == "__main__":
    main()
