"""Reading-order CER of the layout step vs the engine's own order, per page of a data set.

    python -m bench.layout_order [--set scribe_docs|sroie_receipts|zh_pdf_docs] [--data DIR]
                                 [--cache DIR]

The engine runs in-process (function.settings.Settings() defaults, decoded as function.pipeline
decodes) once per image; its lines are cached in a temporary directory keyed by the image's
bytes, the settings and the engine's and decoder's source, so iterating on function/layout.py
re-runs only the layout. Each page's text is scored twice against its ground truth: in the
engine's order (top to bottom, left to right across the whole page: what the function returns
today) and in `layout.arrange`'s order (blocks in reading order, lines in order within each
block). scribe_docs' ground-truth line order comes from a Tesseract-based tool, so it favours
Tesseract's way of splitting blocks; zh_pdf_docs' from the PDFs' text layer. Results are in
docs/layout.md.
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

from bench.harness import cer, normalise
from function import detect, images, pipeline, recognise, spacing
from function.engine import Engine
from function.layout import arrange, hull
from function.settings import Settings

KINDS = {
    "multicol": "multi-column",
    "deposition": "multi-column",
    "table": "table",
    "sroie": "receipt",
}
CASE_INSENSITIVE = {"sroie_receipts"}  # its ground truth is upper case


def kind(name: str) -> str:
    return KINDS.get(name.split("_")[0], "other")


def cached_lines(path: Path, settings: Settings, cache: Path, engine: Engine) -> list[dict]:
    """The engine's lines for `path` as [{"box": 4 corners in original pixels, "text"}]."""
    data = path.read_bytes()
    key = hashlib.sha256(data + json.dumps(asdict(settings), default=str).encode())
    for module in (images, detect, recognise, spacing):  # a changed step reads again
        key.update(Path(module.__file__).read_bytes())
    cached = cache / f"{path.stem}-{key.hexdigest()[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    image = images.decode(data, max_side=settings.max_side, max_pixels=settings.max_pixels)
    started = time.perf_counter()
    with engine.session() as models:
        found = pipeline.read(image, models)
    lines = [{"box": line.box, "text": line.text} for line in found]
    print(f"  OCR {path.name}: {len(lines)} lines in {time.perf_counter() - started:.1f} s")
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(lines))
    return lines


def laid_out_text(lines: list[dict]) -> tuple[str, int]:
    """The text as the pipeline returns it: lines joined by newlines, blocks by blank lines."""
    blocks = arrange([hull(line["box"]) for line in lines])
    text = "\n\n".join("\n".join(lines[i]["text"] for i in block.lines) for block in blocks)
    return text, len(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--set", default="scribe_docs")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "layout-ocr")
    args = parser.parse_args()

    settings = Settings()
    engine = Engine(settings)
    folder = args.data / args.set
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    rows = []
    for path in paths:
        lines = cached_lines(path, settings, args.cache, engine)
        truth = normalise(path.with_suffix(".txt").read_text(encoding="utf-8"))
        today = normalise("\n".join(line["text"] for line in lines))
        started = time.perf_counter()
        text, blocks = laid_out_text(lines)
        layout_ms = (time.perf_counter() - started) * 1000
        text = normalise(text)
        if args.set in CASE_INSENSITIVE:
            truth, today, text = truth.lower(), today.lower(), text.lower()
        rows.append(
            {
                "page": path.stem,
                "kind": kind(path.stem),
                "lines": len(lines),
                "blocks": blocks,
                "chars": len(truth),
                "today": cer(truth, today),
                "layout": cer(truth, text),
                "ms": layout_ms,
            }
        )
    print(table(rows))


def table(rows: list[dict]) -> str:
    out = [
        "| page | kind | lines | blocks | CER today | CER layout | layout ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " (worse)" if r["layout"] > r["today"] + 1e-9 else ""
        out.append(
            f"| {r['page']} | {r['kind']} | {r['lines']} | {r['blocks']} | {r['today']:.3f} | "
            f"{r['layout']:.3f}{flag} | {r['ms']:.1f} |"
        )
    groups = {"all pages": rows}
    for name in ("multi-column", "table", "receipt", "other"):
        groups[name] = [r for r in rows if r["kind"] == name]
    out.append("")
    out.append(
        "| pages | n | CER today (mean / median / pooled) | CER layout (mean / median / pooled) "
        "| worse than today |"
    )
    out.append("|---|---|---|---|---|")
    for name, group in groups.items():
        if not group:
            continue
        worse = sum(r["layout"] > r["today"] + 1e-9 for r in group)
        out.append(
            f"| {name} | {len(group)} | {summary(group, 'today')} | {summary(group, 'layout')} "
            f"| {worse} |"
        )
    return "\n".join(out)


def summary(rows: list[dict], order: str) -> str:
    """Mean and median of the pages' CER, and the pooled CER (all edits over all characters)."""
    values = [r[order] for r in rows]
    pooled = sum(r[order] * r["chars"] for r in rows) / max(1, sum(r["chars"] for r in rows))
    return f"{statistics.mean(values):.3f} / {statistics.median(values):.3f} / {pooled:.3f}"


if __name__ == "__main__":
    main()
