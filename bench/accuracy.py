"""Accuracy, cost and peak memory on the real evaluation sets: configurations vs peers, one run.

    python -m bench.accuracy [--data ../shared/data] [--sets sroie_receipts,...]
        [--configs defaults,shipped,tesseract] [--define NAME:KEY=VALUE,...] [--limit N]
        [--cpus N] [--turns 0,90,180,270] [--out JSON]
    python -m bench.accuracy --report JSON     # the tables of a saved run

Every image goes to every configuration of the function (each its own functions-framework
process) and to Tesseract 5 in turn. Per set, and per page kind on scribe_docs (prose, table,
receipt; pages whose reference reads in an order no reader would use, `harness.WRONG_ORDER`,
apart), it reports bag-of-characters F1 and reading-order CER (NFKC, whitespace removed), words
F1 (bag of whitespace-separated words, NFKC, case-insensitive), exact matches (plates: the
separator dot ignored), on table pages the rows that come back on one line, median time and CPU
seconds per image, and peak RSS. Reads the images in place (never
copy them into the project); writes raw per-image rows to bench/results/accuracy.json and
Markdown tables on stdout, progress on stderr.
`--cpus 1` runs every engine on one CPU, the shape of the instance deploy/ makes (1 vCPU; see
`harness.pin_cpus`).

The orientation run (issue 19): `--turns 0,90,180,270` sends every image also turned clockwise
by each angle (a lossless PNG, no EXIF), and a second table says per set and turn how often the
rotation reported was right, the CER against the same configuration's upright reading of each
image, and the CPU against `no_rotate` (AUTO_ROTATE=false) upright. The peer `tesseract_osd` is
Tesseract's orientation detection alone (`--psm 0`): its answer and its CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from bench import harness, setup
from bench.harness import PEERS, TESSERACT, TESSERACT_OSD, mean, median
from tests import render

SETS = ["sroie_receipts", "scribe_docs", "zh_pdf_docs", "zh_pdf_slides", "cn_plates"]
CASE_INSENSITIVE = {"sroie_receipts"}  # the receipts' ground truth is upper-case
SEPARATOR_DOTS = "·•・.‧∙⋅"  # a plate's separator: not in cn_plates' ground truth
IGNORED = {"cn_plates": SEPARATOR_DOTS}
# Tesseract's language and page segmentation per set (None: its default, automatic layout)
TESSERACT_SETTINGS: dict[str, tuple[str, int | None]] = {
    "sroie_receipts": ("eng", None),
    "scribe_docs": ("eng", None),
    "zh_pdf_docs": ("chi_sim+eng", None),
    "zh_pdf_slides": ("chi_sim+eng", None),
    "cn_plates": ("chi_sim", 7),  # one text line
}
# scribe_docs' page kinds, from the name's prefix, SOURCE.md and a look at each page
PAGE_KINDS = {
    "multicol": "prose",  # papers, magazine, equity research: columns, a sidebar
    "deposition": "prose",  # four transcript pages on one sheet, two columns of text
    "filing": "prose",
    "singlecol": "prose",
    "slide": "prose",
    "table": "table",
    "form": "table",  # a booking report: a grid of labelled fields
    "chart": "table",  # an organisation chart: a grid of short boxed entries, no reading order
    "receipt": "receipt",
}
WRONG = "reference order wrong"  # the kind of a page in harness.WRONG_ORDER: scored apart
DEFAULT_CONFIGS = f"defaults,shipped,{TESSERACT}"
BASE = "defaults"  # what the CPU ratio is against: rapidocr as it comes
UNTURNED = "no_rotate"  # what the orientation run's CPU ratio is against: no AUTO_ROTATE
TURNS = (0, 90, 180, 270)


def page_kind(data_set: str, image: str) -> str | None:
    """The page kind of a scribe_docs image (e.g. 'deposition_01.png' -> 'prose')."""
    if data_set != "scribe_docs":
        return None
    if Path(image).stem in harness.WRONG_ORDER.get(data_set, {}):
        return WRONG
    return PAGE_KINDS.get(image.rsplit("_", 1)[0], "other")


def reference_rows(path: Path) -> list[str]:
    """A table page's rows of cells, from its hOCR ground truth (none on other pages: on a prose
    page two columns' lines side by side would look like a row)."""
    hocr = path.with_suffix(".gt.hocr")
    if PAGE_KINDS.get(path.stem.rsplit("_", 1)[0]) != "table" or not hocr.exists():
        return []
    return harness.table_rows(hocr.read_text())


def images(folder: Path, limit: int | None) -> list[Path]:
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return found[:limit] if limit else found


def read(name: str, servers: dict, data_set: str, path: Path, data: bytes) -> harness.Reading:
    if name == TESSERACT:
        return harness.read_with_tesseract(path, *TESSERACT_SETTINGS[data_set])
    if name == TESSERACT_OSD:
        return harness.tesseract_orientation(path)
    return harness.read_with_function(servers[name], data)


def turned(path: Path, degrees: int) -> bytes:
    """The image's bytes as they are, or turned clockwise as a lossless PNG without EXIF."""
    if not degrees:
        return path.read_bytes()
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        return render.encode(upright.rotate(-degrees, expand=True), "PNG")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help=f"comma-separated, of: {', '.join([*harness.CONFIGS, *PEERS])}",
    )
    parser.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a further configuration (environment on top of the function's defaults); "
        "it runs too. Repeatable",
    )
    parser.add_argument("--limit", type=int, default=None, help="images per set")
    parser.add_argument(
        "--cpus",
        type=int,
        default=None,
        help="pin this benchmark and every engine it starts to its first N CPUs",
    )
    parser.add_argument(
        "--turns",
        default="0",
        help="comma-separated clockwise turns each image is also sent at, of 0,90,180,270",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/accuracy.json")
    parser.add_argument(
        "--report", type=Path, default=None, help="print the tables of a saved run and stop"
    )
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        found = saved["rows"]
        for saved_row in found:  # the kinds as this code has them (WRONG_ORDER may have changed)
            saved_row["kind"] = page_kind(saved_row["set"], saved_row["image"])
        sets = list(dict.fromkeys(r["set"] for r in found))
        print(table(found, sets, list(saved["meta"]["configs"])))
        return
    turns = [int(t) for t in args.turns.split(",")]
    if not set(turns) <= set(TURNS):
        sys.exit(f"--turns takes angles of {TURNS}, not {args.turns!r}")
    defined = [harness.define(spec) for spec in args.define]
    names = list(dict.fromkeys(harness.config_names(args.configs) + defined))
    sets = args.sets.split(",")
    for data_set in sets:
        if data_set not in SETS or not (args.data / data_set).is_dir():
            sys.exit(f"no set {data_set!r} in {args.data} (known: {', '.join(SETS)})")

    cpus = harness.pin_cpus(args.cpus)
    tesseract_version = None
    if TESSERACT in names or TESSERACT_OSD in names:
        try:
            tesseract_version = setup.ensure_tesseract()
        except setup.SetupError as error:
            sys.exit(setup.explain(error))

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        function_names = [n for n in names if n not in PEERS]
        progress(f"starting {len(function_names)} functions-framework process(es)")
        servers = harness.start(Path(tmp), function_names)
        warm_up = render.encode(render.page(["Warm up 2026"]).image, "PNG")
        for server in servers.values():  # first-call costs are not what a page costs
            harness.ocr(server, warm_up)
        started = time.monotonic()
        try:
            for data_set in sets:
                paths = images(args.data / data_set, args.limit)
                for number, path in enumerate(paths, 1):
                    truth = path.with_suffix(".txt").read_text(encoding="utf-8")
                    rows_truth = reference_rows(path)
                    for degrees in turns:
                        data = turned(path, degrees)
                        source = path
                        if degrees:  # Tesseract reads a file
                            source = Path(tmp) / "turned.png"
                            source.write_bytes(data)
                        # side by side: every engine sees every image in turn
                        for name in names:
                            reading = read(name, servers, data_set, source, data)
                            rows.append(
                                row(data_set, path, degrees, name, reading, truth, rows_truth),
                            )
                    progress(
                        f"{data_set} {number}/{len(paths)} {path.name}  "
                        f"({time.monotonic() - started:.0f} s)"
                    )
        finally:
            for server in servers.values():
                server.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "configs": {n: harness.CONFIGS.get(n, TESSERACT_SETTINGS) for n in names},
        "tesseract": tesseract_version,
        "cpus": cpus,
        "turns": turns,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, ensure_ascii=False))
    progress(f"wrote {args.out}")
    upright = [r for r in rows if r["turn"] == 0 and r["config"] != TESSERACT_OSD]
    if upright:
        print(table(upright, sets, [n for n in names if n != TESSERACT_OSD]))
    if turns != [0]:
        print(orientation_table(rows, sets, names, turns))


def row(
    data_set: str,
    path: Path,
    degrees: int,
    name: str,
    reading: harness.Reading,
    truth: str,
    rows_truth: list[str],
) -> dict:
    """One image read by one engine at one turn: scores, cost, and the rotation it reported."""
    scores = harness.score(
        truth,
        reading.text,
        case_insensitive=data_set in CASE_INSENSITIVE,
        ignore=IGNORED.get(data_set, ""),
    )
    if name == TESSERACT_OSD:  # it reads no text: only its answer and its cost
        scores = dict.fromkeys(scores)
    found = {"set": data_set, "kind": page_kind(data_set, path.name), "image": path.name}
    found |= {"turn": degrees, "config": name, **scores}
    found |= {
        "table_rows": len(rows_truth),
        "rows_read": harness.rows_read(rows_truth, reading.text),
        "ms": reading.ms,
        "wall_ms": reading.wall_ms,
        "cpu_s": reading.cpu_s,
        "peak_rss_mb": reading.peak_rss_mb,
        **reading.extra,
        "text": reading.text,
    }
    if "rotation" in reading.extra:
        found["rotation_right"] = reading.extra["rotation"] == (360 - degrees) % 360
    return found


def cpu_ratio(rows: list[dict], baseline: dict[tuple[str, str], float]) -> str:
    """Median of per-image CPU ratios against the baseline: a ratio of medians would compare
    different images when the two configurations' CPU times rank the images differently."""
    ratios = [
        row["cpu_s"] / baseline[row["set"], row["image"]]
        for row in rows
        if baseline.get((row["set"], row["image"]))
    ]
    return f"{median(ratios):.2f}" if ratios else ""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def groups(rows: list[dict], sets: list[str]) -> list[tuple[str, str, list[dict]]]:
    """(set, kind, rows): each set whole, then scribe_docs per page kind."""
    found = []
    for data_set in sets:
        mine = [r for r in rows if r["set"] == data_set]
        found.append((data_set, "all", mine))
        for kind in dict.fromkeys(r["kind"] for r in mine if r["kind"]):
            found.append((data_set, kind, [r for r in mine if r["kind"] == kind]))
    return found


def table(rows: list[dict], sets: list[str], names: list[str]) -> str:
    lines = [
        "| set | kind | config | images | bag F1 | CER | words F1 | exact | table rows | "
        f"ms | CPU s | CPU × {BASE} | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    baseline = {(row["set"], row["image"]): row["cpu_s"] for row in rows if row["config"] == BASE}
    for data_set, kind, mine in groups(rows, sets):
        for name in names:
            r = [row for row in mine if row["config"] == name]
            if not r:
                continue

            def both(key: str, r: list[dict] = r) -> str:
                values = [row[key] for row in r]
                return f"{median(values):.3f} / {mean(values):.3f}"

            peaks = [row["peak_rss_mb"] for row in r]
            worst = max(row["cer"] for row in r)
            tabular = [
                row for row in r if PAGE_KINDS.get(row["image"].rsplit("_", 1)[0]) == "table"
            ]
            table_rows = sum(row.get("table_rows", 0) for row in tabular)
            rows_read = sum(row.get("rows_read", 0) for row in tabular)
            rows = f"{rows_read}/{table_rows}" if table_rows else ""
            lines.append(
                f"| {data_set} | {kind} | {name} | {len(r)} | {both('bag_f1')} | "
                f"{both('cer')} / {worst:.3f} | "
                f"{both('words_f1')} | {sum(row['exact'] for row in r)}/{len(r)} | {rows} | "
                f"{median([row['ms'] for row in r]):.0f} | "
                f"{median([row['cpu_s'] for row in r]):.2f} | {cpu_ratio(r, baseline)} | "
                f"{median(peaks):.0f} / {max(peaks):.0f} |"
            )
    notes = (
        "\nbag F1, CER, words F1: median / mean over the images (CER: and the worst image). "
        "table rows: the ground truth's rows of two cells or more (from its word boxes) that "
        "come back on one line, cells in order (`harness.rows_read`). ms, CPU s: medians per image "
        "(the function: timings_ms.total and its worker's CPU; Tesseract: its process). "
        f"CPU × {BASE}: the median over the images of each one's CPU s over {BASE}' on it. "
        "peak RSS MB: median / max (the function: memory.peak_rss_mb; Tesseract: maxrss)."
    )
    return "\n".join(lines) + "\n" + notes


def orientation_table(rows: list[dict], sets: list[str], names: list[str], turns: list[int]) -> str:
    """Per set, turn and engine: rotations right, CER against upright, CPU against no_rotate."""
    lines = [
        "| set | turn | config | images | rotation right | CER | CER − upright: mean / max "
        f"| > 0.03 | CPU s | CPU × {UNTURNED} upright |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    upright = {(r["config"], r["set"], r["image"]): r for r in rows if r["turn"] == 0}
    baseline = {
        (r["set"], r["image"]): r["cpu_s"]
        for r in rows
        if r["turn"] == 0 and r["config"] == UNTURNED
    }
    for data_set in sets:
        for degrees in turns:
            for name in names:
                r = [
                    x
                    for x in rows
                    if (x["set"], x["turn"], x["config"]) == (data_set, degrees, name)
                ]
                if not r:
                    continue
                right = [x for x in r if x.get("rotation_right")]
                cer = change = over = ""
                if name != TESSERACT_OSD:
                    values = [x["cer"] for x in r]
                    cer = f"{median(values):.3f} / {mean(values):.3f}"
                    pairs = [(x, upright.get((name, data_set, x["image"]))) for x in r]
                    diffs = [x["cer"] - u["cer"] for x, u in pairs if u]
                    if diffs and degrees:
                        change = f"{mean(diffs):+.3f} / {max(diffs):+.3f}"
                        over = f"{sum(d > 0.03 for d in diffs)}/{len(diffs)}"
                lines.append(
                    f"| {data_set} | {degrees} | {name} | {len(r)} | "
                    f"{len(right)}/{len(r) if 'rotation' in r[0] else ''} | {cer} | {change} | "
                    f"{over} | {median([x['cpu_s'] for x in r]):.2f} | {cpu_ratio(r, baseline)} |"
                )
    notes = (
        "\nturn: clockwise, as sent. rotation right: the rotation reported is the turn back "
        f"to upright ({TESSERACT_OSD}: its `Rotate:`; none where it finds too few characters). "
        "CER: median / mean. CER − upright: per image, its CER at this turn minus the same "
        "configuration's upright; > 0.03: images beyond the issue's goal. CPU s: median per "
        f"image; CPU × {UNTURNED} upright: the median over the images of each one's CPU s over "
        f"{UNTURNED}' on the same image upright."
    )
    return "\n".join(lines) + "\n" + notes


if __name__ == "__main__":
    main()
