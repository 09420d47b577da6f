"""Whole documents (issue 17): memory over 1-, 10- and 100-page scans, pages per CPU-second
against OCRmyPDF, and a page read from a PDF against the same page read as an image. One run.

    python -m bench.documents [--cpus 1] [--parts memory,throughput,accuracy] [--peer-100]

Every document is made here, in a temporary folder, from the real pages of
../shared/data/scribe_docs (read in place, never copied into the project):

- scanned: a page flattened onto white, greyscale, fitted into an A4 page at 300 dpi
  (2480x3508), thresholded to black and white and compressed with CCITT G4 (a scanner's
  black-and-white mode, ~70 kB a page); img2pdf copies the G4 data unchanged into A4 pages.
  For memory, one page (MEMORY_PAGE) 1, 10 and 100 times, so that only the count changes
  (`--grey-100`: also 100 times as greyscale JPEG, quality 75, a scanner's grey mode: the same
  work, ten times the bytes); for throughput, the first 10 pages, each once.
- born-digital: the same pages' ground-truth texts typeset by fpdf2 in DejaVu Sans (embedded,
  subset, with its ToUnicode map, as word processors write them), one A4 page each; 10 and 100.
- text layer over a scan: OCRmyPDF's own output for the 10-page scan (its invisible text).
- accuracy: each page image wrapped losslessly by img2pdf, once at the image's own resolution
  (96 dpi: its native size) and once at 300 dpi.

The function runs as deployed: ONE functions-framework process (the shipped settings, documents
allowed to take an hour and up to 128 MiB of body), its worker's RSS read from outside every
10 ms; CPU is the worker's utime + stime around each request (/proc). OCRmyPDF (Debian's
`ocrmypdf`, installed here if missing, like bench/setup.py installs Tesseract) runs as
`ocrmypdf --jobs 1 --output-type pdf --optimize 0 [--skip-text]`, its CPU that of the process and
everything it waited for (wait4). `--cpus 1` pins both to one CPU. Writes
bench/results/documents.json and documents.png (RSS over the run and over the 100-page scan), a
Markdown summary on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench import harness, setup
from bench.memory_mix import SAMPLE_SECONDS, Input, Sampler, post

GOAL_MB = 250  # issue 17: peak RSS for any page count
A4_300 = (2480, 3508)  # A4 in pixels at 300 dpi
MARGIN = 150  # pixels of white around a fitted page: half an inch
SETTLE_SECONDS = 2.0
MEMORY_PAGE = "filing_01.png"  # the 1-, 10- and 100-page scans: one page of plain text, repeated
CONFIG = {  # shipped settings; a long document must not hit the request's 60 s deadline
    "REQUEST_TIMEOUT_SECONDS": "3600",
    "MAX_IMAGE_BYTES": str(128 * 2**20),
    "MAX_PAGES": "1000",
}
PEER = ["ocrmypdf", "--jobs", "1", "--output-type", "pdf", "--optimize", "0"]


@dataclass
class Document:
    label: str
    kind: str  # "scanned", "born-digital", "text layer over a scan"
    pages: int
    path: Path


# --- making the documents -------------------------------------------------------------------


def flat(path: Path) -> Image.Image:
    """A page image as the function sees it: transparency onto white (function/images.py)."""
    image = Image.open(path)
    image.load()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        white = Image.new("RGB", image.size, "white")
        white.paste(image, mask=image.getchannel("A"))
        return white
    return image


def a4_page(path: Path) -> Image.Image:
    """The page, greyscale, fitted into an A4 page at 300 dpi (white margins)."""
    image = flat(path).convert("L")
    scale = min((A4_300[0] - 2 * MARGIN) / image.width, (A4_300[1] - 2 * MARGIN) / image.height)
    size = (round(image.width * scale), round(image.height * scale))
    page = Image.new("L", A4_300, 255)
    page.paste(image.resize(size, Image.Resampling.LANCZOS), (MARGIN, MARGIN))
    return page


def bilevel_scan(page: Image.Image) -> bytes:
    """A scanner's black-and-white mode: thresholded at mid-grey, CCITT G4 in a TIFF."""
    black_white = page.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=None)
    out = io.BytesIO()
    black_white.save(out, "TIFF", compression="group4", dpi=(300, 300))
    return out.getvalue()


def grey_scan(page: Image.Image) -> bytes:
    """A scanner's greyscale mode: JPEG, quality 75."""
    out = io.BytesIO()
    page.save(out, "JPEG", quality=75, dpi=(300, 300))
    return out.getvalue()


def scanned_pdf(scans: list[bytes], pages: int) -> bytes:
    """The scans in turn as A4 pages; img2pdf copies JPEG and G4 data into the PDF unchanged."""
    import img2pdf  # bench/requirements.txt: imported where used, so --help needs only the tests'

    layout = img2pdf.get_fixed_dpi_layout_fun((300, 300))
    return img2pdf.convert([scans[i % len(scans)] for i in range(pages)], layout_fun=layout)


def born_digital_pdf(texts: list[str], pages: int) -> bytes:
    """Each text on its own A4 page in DejaVu Sans 10 pt; what does not fit is left off."""
    import matplotlib  # ships DejaVu Sans: a Unicode TrueType font with no system install
    from fpdf import FPDF

    font = Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", fname=str(font))
    for number in range(pages):
        pdf.add_page()
        pdf.set_font("DejaVu", size=10)
        for line in texts[number % len(texts)].splitlines():
            if pdf.get_y() > 297 - 20:
                break
            pdf.multi_cell(0, 4.6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def lossless_pdf(path: Path, dpi: float | None) -> bytes:
    """The page image itself as a PDF page (PNG data kept as it is; alpha as a soft mask), at
    `dpi` or at the image's own resolution."""
    import img2pdf

    if dpi is None:
        return img2pdf.convert(path.read_bytes())
    return img2pdf.convert(
        path.read_bytes(), layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    )


# --- the peer -------------------------------------------------------------------------------


def ensure_ocrmypdf() -> str:
    """Debian's OCRmyPDF (which brings Tesseract and Ghostscript), installed when missing."""
    if not shutil.which("ocrmypdf"):
        try:
            setup.ensure_tesseract()
            install = setup._apt_get("install", "-y", "--no-install-recommends", "ocrmypdf")
            if install.returncode != 0:
                setup._apt_get("update")
                install = setup._apt_get("install", "-y", "--no-install-recommends", "ocrmypdf")
        except setup.SetupError as error:
            sys.exit(f"OCRmyPDF is not available: {error}")
        if install.returncode != 0 or not shutil.which("ocrmypdf"):
            sys.exit(f"apt-get install ocrmypdf failed:\n{install.stderr.strip()}")
    return subprocess.run(["ocrmypdf", "--version"], capture_output=True, text=True).stdout.strip()


def run_peer(document: Document, out: Path, skip_text: bool) -> dict:
    """`ocrmypdf --jobs 1 ...` on one document; the CPU of it and its children.

    No peak RSS: wait4's ru_maxrss of a child started by a large process counts the parent's
    resident memory at the exec (it is the mm's high-water mark then), not the child's own.
    """
    command = [*PEER, *(["--skip-text"] if skip_text else [])]
    command += ["--sidecar", str(out.with_suffix(".txt")), str(document.path), str(out)]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)  # usage includes the children it waited for
    wall = time.perf_counter() - started
    errors = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{errors}")
    return {
        "engine": "ocrmypdf",
        "command": " ".join(command[:-4] + ["--sidecar", "OUT.txt", "IN.pdf", "OUT.pdf"]),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "wall_s": round(wall, 2),
    }


# --- the function ---------------------------------------------------------------------------


def run_function(server, sampler: Sampler, started: float, document: Document) -> dict:
    """POST one document; the worker's CPU, the response's and the sampled peaks, per page."""
    pid = server.worker_pid()
    item = Input(document.label, document.path.read_bytes(), "application/pdf", "made")
    rss_before, cpu_before = harness.rss_mb(pid), harness.cpu_seconds(pid)
    begin = time.perf_counter() - started
    status, body = post(server.url, item)
    end = time.perf_counter() - started
    cpu = harness.cpu_seconds(pid) - cpu_before
    time.sleep(2 * SAMPLE_SECONDS)
    if status != 200:
        raise RuntimeError(f"{document.label}: {status} {body}")
    pages = body["pages"]
    sources = [page["source"] for page in pages]
    return {
        "engine": "function",
        "cpu_s": round(cpu, 3),
        "wall_s": round(end - begin, 2),
        "peak_rss_mb": body["memory"]["peak_rss_mb"],
        "sampled_peak_mb": sampler.peak("function", begin, end + SAMPLE_SECONDS),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(harness.rss_mb(pid), 1),
        "sources": {source: sources.count(source) for source in set(sources)},
        "complete": body["complete"],
        "start_s": round(begin, 3),
        "end_s": round(end, 3),
        "per_page": [
            {
                "page": page["page"],
                "rss_mb": page["rss_mb"],
                "peak_rss_mb": page["peak_rss_mb"],
                "prepare_ms": page["timings_ms"]["prepare"],
                "total_ms": page["timings_ms"]["total"],
                "scale": page["scale"],
            }
            for page in pages
        ],
    }


def read_image(server, data: bytes, content_type: str) -> dict:
    status, body = post(server.url, Input("", data, content_type, ""))
    if status != 200:
        raise RuntimeError(f"{status} {body}")
    return body


def accuracy(server, pages: list[Path], tmp: Path) -> list[dict]:
    """Each page as its PNG and as a one-page PDF at native size and at 300 dpi, side by side."""
    rows = []
    for number, path in enumerate(pages, 1):
        truth = path.with_suffix(".txt").read_text(encoding="utf-8")
        image = read_image(server, path.read_bytes(), "image/png")
        row = {
            "image": path.name,
            "image_size": [image["image"]["width"], image["image"]["height"]],
            "image_scale": image["image"]["scale"],
            "png": {**harness.score(truth, image["text"]), "text": image["text"]},
        }
        for name, dpi in (("pdf_native", None), ("pdf_300dpi", 300)):
            pdf = lossless_pdf(path, dpi)
            body = read_image(server, pdf, "application/pdf")
            page = body["pages"][0]
            text = body["text"]
            row[name] = {
                **harness.score(truth, text),
                "same_text": text == image["text"],
                "page_pt": [page["width"], page["height"]],
                "scale": page["scale"],  # rendered pixels per point
                "rendered_px": [
                    round(page["width"] * page["scale"]),
                    round(page["height"] * page["scale"]),
                ],
                "text": text,
            }
        rows.append(row)
        progress(
            f"accuracy {number}/{len(pages)} {path.name}: png {row['png']['bag_f1']}, "
            f"pdf native {row['pdf_native']['bag_f1']} (same: {row['pdf_native']['same_text']}), "
            f"pdf 300 dpi {row['pdf_300dpi']['bag_f1']} (same: {row['pdf_300dpi']['same_text']})"
        )
    return rows


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--cpus", type=int, default=None, help="pin everything to N CPUs")
    parser.add_argument("--parts", default="memory,throughput,accuracy")
    parser.add_argument(
        "--peer-100", action="store_true", help="OCRmyPDF on the 100-page scan too (long)"
    )
    parser.add_argument(
        "--grey-100", action="store_true", help="the 100-page scan as greyscale JPEGs too"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/documents.json"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    cpus = harness.pin_cpus(args.cpus)
    peer_version = ensure_ocrmypdf() if "throughput" in parts else None
    pages = sorted((args.data / "scribe_docs").glob("*.png"))
    if not pages:
        sys.exit(f"no scribe_docs pages in {args.data}")
    texts = [page.with_suffix(".txt").read_text(encoding="utf-8") for page in pages]

    runs: list[dict] = []
    idle: dict[str, float] = {}
    result = {
        "meta": {
            "command": " ".join(["python -m bench.documents", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "cpus": cpus,
            "config": CONFIG,
            "ocrmypdf": peer_version,
            "memory_page": MEMORY_PAGE,
            "pages": [page.name for page in pages],
        },
        "idle": idle,
        "runs": runs,
        "accuracy": [],
        "samples": [],
    }

    def save() -> None:
        """The JSON so far: a long run interrupted keeps what it measured."""
        args.out.parent.mkdir(parents=True, exist_ok=True)
        snapshot = {**result, "samples": list(result["samples"])}  # the sampler appends to it
        args.out.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False))

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        progress("making the documents")
        a4 = [a4_page(page) for page in pages]
        scans, greys = [bilevel_scan(page) for page in a4], [grey_scan(page) for page in a4]
        del a4
        documents: dict[str, Document] = {}

        def add(key: str, label: str, kind: str, count: int, data: bytes) -> None:
            path = tmp / f"{key}.pdf"
            path.write_bytes(data)
            documents[key] = Document(label, kind, count, path)
            progress(f"  {label}: {len(data) / 2**20:.1f} MiB")

        one = [page.name for page in pages].index(MEMORY_PAGE)
        for count in (1, 10, 100):
            label = f"{MEMORY_PAGE} scanned (G4) x {count}"
            add(f"mem{count}", label, "scanned", count, scanned_pdf([scans[one]], count))
        label = f"{MEMORY_PAGE} scanned (greyscale JPEG) x 100"
        add("grey100", label, "scanned", 100, scanned_pdf([greys[one]], 100))
        add("scan10", "10 pages scanned (G4)", "scanned", 10, scanned_pdf(scans[:10], 10))
        for count in (10, 100):
            add(
                f"text{count}",
                f"born-digital, {count} pages",
                "born-digital",
                count,
                born_digital_pdf(texts, count),
            )

        progress("starting the function (one functions-framework process)")
        server = harness.start(tmp, [harness.define("documents:" + _spec(CONFIG))])["documents"]
        try:
            pid = server.worker_pid()
            time.sleep(SETTLE_SECONDS)
            idle["after_start_mb"] = round(harness.rss_mb(pid), 1)
            started = time.perf_counter()
            sampler = Sampler({"function": pid}, started)
            result["samples"] = sampler.samples["function"]
            sampler.start()
            read_image(server, greys[0], "image/jpeg")  # first-call costs are not a document's
            time.sleep(SETTLE_SECONDS)
            idle["before_documents_mb"] = round(harness.rss_mb(pid), 1)

            def record(key: str, row: dict) -> None:
                document = documents[key]
                runs.append(
                    {
                        "document": key,
                        "label": document.label,
                        "kind": document.kind,
                        "pages": document.pages,
                        "bytes": document.path.stat().st_size,
                        **row,
                    }
                )
                save()

            def function(key: str) -> None:
                document = documents[key]
                row = run_function(server, sampler, started, document)
                record(key, row)
                progress(
                    f"function  {document.label}: {row['cpu_s']:.1f} CPU s, peak "
                    f"{row['peak_rss_mb']} MB (sampled {row['sampled_peak_mb']}), {row['sources']}"
                )

            def peer(key: str, skip_text: bool) -> None:
                document = documents[key]
                out = tmp / f"{key}.ocrmypdf.pdf"
                row = run_peer(document, out, skip_text)
                record(key, row)
                progress(f"ocrmypdf  {document.label}: {row['cpu_s']:.1f} CPU s")

            if "memory" in parts:
                for key in ("mem1", "mem10", "mem100"):
                    function(key)
                time.sleep(SETTLE_SECONDS)
                idle["after_scans_mb"] = round(harness.rss_mb(pid), 1)
                save()
                if args.grey_100:  # the same page, ten times the bytes
                    function("grey100")
            if "throughput" in parts:
                for key in ("scan10", "text10", "text100"):
                    function(key)
                peer("scan10", skip_text=False)
                ocrd = tmp / "scan10.ocrmypdf.pdf"
                documents["ocrd10"] = Document(
                    "OCRmyPDF's output of the 10-page scan", "text layer over a scan", 10, ocrd
                )
                function("ocrd10")
                peer("text10", skip_text=True)
                peer("text100", skip_text=True)
                peer("ocrd10", skip_text=True)
                if args.peer_100:
                    peer("mem100", skip_text=False)
            if "accuracy" in parts:
                result["accuracy"] = accuracy(server, pages, tmp)
            time.sleep(SETTLE_SECONDS)
            idle["after_all_mb"] = round(harness.rss_mb(pid), 1)
            sampler.stopping.set()
            sampler.join()
        finally:
            server.stop()

    save()
    plot(result, args.out.with_suffix(".png"))
    progress(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    print(summary(result))


def _spec(config: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in config.items())


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- reporting ------------------------------------------------------------------------------


def summary(result: dict) -> str:
    """Markdown: per run, then the goals."""
    runs = result["runs"]
    out = [
        "| document | pages | MiB | engine | CPU s | pages per CPU s | peak RSS MB (response / "
        "sampled) | read as |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        peak = f"{r['peak_rss_mb']} / {r['sampled_peak_mb']}" if r["engine"] == "function" else ""
        read_as = ", ".join(f"{n} {s}" for s, n in r.get("sources", {}).items())
        out.append(
            f"| {r['label']} | {r['pages']} | {r['bytes'] / 2**20:.1f} | {r['engine']} | "
            f"{r['cpu_s']:.2f} | {r['pages'] / r['cpu_s']:.2f} | {peak} | {read_as} |"
        )
    idle = result["idle"]
    out.append("\nidle RSS MB: " + ", ".join(f"{k} {v}" for k, v in idle.items()))

    def find(key: str, engine: str) -> dict | None:
        return next((r for r in runs if r["document"] == key and r["engine"] == engine), None)

    scans = [find(k, "function") for k in ("mem1", "mem10", "mem100")]
    if all(scans):
        peaks = [r["sampled_peak_mb"] for r in scans]
        spread = max(peaks) / min(peaks) - 1
        before, after = idle["before_documents_mb"], idle["after_scans_mb"]
        out.append(
            f"\nmemory: sampled peaks {peaks} MB, max {max(peaks)} (goal <= {GOAL_MB}), spread "
            f"{spread:.1%} (goal <= 10%); idle before {before} MB, after {after} MB "
            f"({after / before - 1:+.1%}, goal within 10%)"
        )
    scan, text = find("mem100", "function"), find("text100", "function")
    if scan and text:
        ocr_cost, layer_cost = scan["cpu_s"] / scan["pages"], text["cpu_s"] / text["pages"]
        out.append(
            f"throughput: function {ocr_cost:.3f} CPU s per scanned page, {layer_cost:.4f} per "
            f"text-layer page: {ocr_cost / layer_cost:.0f}x cheaper (goal >= 50x)"
        )
    if result["accuracy"]:
        out += ["", accuracy_table(result["accuracy"])]
    return "\n".join(out)


def accuracy_table(rows: list[dict]) -> str:
    out = [
        "| page | image px (read at) | PDF page pt (rendered px) native / 300 dpi | bag F1 png / "
        "native / 300 | CER png / native / 300 | words F1 png / native / 300 | same text |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n, t = r["pdf_native"], r["pdf_300dpi"]

        def three(key: str, r: dict = r, n: dict = n, t: dict = t) -> str:
            return f"{r['png'][key]:.3f} / {n[key]:.3f} / {t[key]:.3f}"

        scale = r["image_scale"]
        read_at = [round(v * scale) for v in r["image_size"]]
        out.append(
            f"| {r['image']} | {r['image_size'][0]}x{r['image_size'][1]} "
            f"({read_at[0]}x{read_at[1]}) | {n['page_pt'][0]:.0f}x{n['page_pt'][1]:.0f} "
            f"({n['rendered_px'][0]}x{n['rendered_px'][1]}) / "
            f"{t['rendered_px'][0]}x{t['rendered_px'][1]} | {three('bag_f1')} | {three('cer')} | "
            f"{three('words_f1')} | {'yes' if n['same_text'] else 'no'} / "
            f"{'yes' if t['same_text'] else 'no'} |"
        )
    means = []
    for key in ("bag_f1", "cer", "words_f1"):
        values = [
            statistics.fmean(r[v][key] for r in rows) for v in ("png", "pdf_native", "pdf_300dpi")
        ]
        means.append(" / ".join(f"{v:.3f}" for v in values))
    same = [sum(r[v]["same_text"] for r in rows) for v in ("pdf_native", "pdf_300dpi")]
    out.append(
        f"| **mean** | | | {means[0]} | {means[1]} | {means[2]} | {same[0]}/{len(rows)} / "
        f"{same[1]}/{len(rows)} |"
    )
    return "\n".join(out)


def plot(result: dict, path: Path) -> None:
    """Worker RSS over the whole run (documents shaded) and over the 100-page scan, per page."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    samples = result["samples"]
    figure, (whole, hundred) = pyplot.subplots(2, 1, figsize=(13, 8))
    rss_steps(whole, samples)
    for r in (r for r in result["runs"] if r["engine"] == "function"):
        whole.axvspan(r["start_s"], r["end_s"], color="tab:orange", alpha=0.15, lw=0)
        whole.annotate(
            r["label"],
            (r["start_s"], 0.02),
            xycoords=("data", "axes fraction"),
            fontsize=6,
            rotation=90,
            va="bottom",
        )
    whole.axhline(GOAL_MB, color="tab:green", ls="--", lw=0.8, label=f"{GOAL_MB} MB goal")
    whole.set_ylim(bottom=0)
    whole.set_xlabel("seconds (shaded: a document posted to the function)")
    whole.legend(loc="lower right", fontsize=7)
    whole.set_title("Worker RSS over the whole run")

    scan = next((r for r in result["runs"] if r["document"] == "mem100"), None)
    if scan is not None:
        inside = [
            (t - scan["start_s"], mb) for t, mb in samples if scan["start_s"] <= t <= scan["end_s"]
        ]
        rss_steps(hundred, inside)
        ends, elapsed = [], 0.0  # each page's end, from its own timings
        for page in scan["per_page"]:
            elapsed += page["total_ms"] / 1000
            ends.append(elapsed)
        hundred.plot(
            ends,
            [p["rss_mb"] for p in scan["per_page"]],
            ".",
            ms=3,
            color="tab:red",
            label="rss_mb after each page (response)",
        )
        hundred.axhline(GOAL_MB, color="tab:green", ls="--", lw=0.8)
        hundred.set_ylim(bottom=0)
        hundred.set_xlabel("seconds into the request")
        hundred.legend(loc="lower right", fontsize=7)
        hundred.set_title(
            f"The 100-page scanned PDF ({scan['bytes'] / 2**20:.1f} MiB, A4 at 300 dpi): "
            f"peak {scan['sampled_peak_mb']} MB"
        )
    figure.suptitle(f"bench.documents, {result['meta']['date']}, {result['meta']['cpus']} CPU")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def rss_steps(axes, samples: list[tuple[float, float]]) -> None:
    """The worker's sampled RSS as a step line on `axes`."""
    axes.step(
        [t for t, _ in samples],
        [mb for _, mb in samples],
        where="post",
        lw=0.8,
        label="worker RSS (read every 10 ms)",
    )
    axes.set_ylabel("RSS MB")


if __name__ == "__main__":
    main()
