"""Memory over a mixed sequence (issue 12): one process per configuration serving real pages,
rendered pages and every format in turn, repeated, with its RSS sampled from outside.

    python -m bench.memory_mix [--rounds 2] [--configs defaults,shipped] [--define NAME:K=V,...]
                               [--cpus N]

Each configuration is ONE functions-framework process; every input goes to each configuration
in turn, `--rounds` times over. Per request it records the response's `memory.peak_rss_mb`, the
worker's RSS sampled from outside every 10 ms (the worker is the child of the functions-framework
process; /proc/PID/statm), its CPU seconds (utime + stime) and times; per configuration the
sequence's maximum and the idle RSS after start-up and after the sequence. Real pages are read in
place from ../shared/data; the rest is rendered here (tests/render.py). Writes
bench/results/memory_mix.json and memory_mix.png (the RSS curves), a Markdown table on stdout,
progress on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image

from bench import harness
from tests import render

DEFAULT_CONFIGS = "defaults,shipped"
SAMPLE_SECONDS = 0.010
SETTLE_SECONDS = 2.0  # idle RSS is read this long after start-up / after the last request
GOAL_MB = 250  # issue 12's bound on the worker's peak


@dataclass
class Input:
    label: str
    data: bytes
    content_type: str
    source: str  # a path under the data folder, or "rendered"


# --- the sequence -------------------------------------------------------------------------


def real_pages(data: Path) -> list[Input]:
    """The real pages of the mix, chosen by rule so the choice is the same on any copy."""

    def pixels(path: Path) -> int:
        with Image.open(path) as image:
            return image.width * image.height

    def one(label: str, path: Path) -> Input:
        with Image.open(path) as image:
            size, fmt = f"{image.width}x{image.height}", image.format
        return Input(
            f"{label} ({size} {fmt})", path.read_bytes(), f"image/{fmt.lower()}", str(path)
        )

    def files(pattern: str) -> list[Path]:
        found = sorted(data.glob(pattern))
        if not found:
            raise SystemExit(f"no {pattern} in {data}: the mix needs it")
        return found

    receipts = sorted(files("sroie_receipts/*.jpg"), key=lambda p: (pixels(p), p.stat().st_size))
    return [
        one("largest receipt scan", receipts[-1]),
        one("largest table page", max(files("scribe_docs/table_*.png"), key=pixels)),
        one("Chinese report page", files("zh_pdf_docs/mineru_report_*.png")[0]),
        one("receipt of median size", receipts[len(receipts) // 2]),
        one("licence plate", files("cn_plates/*.jpg")[0]),
    ]


def text_page(size: tuple[int, int], lines: int, font_size: int) -> Image.Image:
    """A page of English text lines, for the rendered inputs."""
    text = [
        f"Line {i:02d}: the quick brown fox jumps over the lazy dog 0123456789"
        for i in range(lines)
    ]
    margin = font_size * 3
    return render.page(text, size=size, font_size=font_size, origin=(margin, margin)).image


def rendered_inputs() -> list[Input]:
    a4 = text_page((2480, 3508), 44, 42)  # tests/test_http.py's dense 300-dpi A4 page
    word = render.page(["HELLO 42"], size=(200, 60), font_size=30, origin=(10, 10)).image
    page = text_page((1240, 1754), 20, 24)  # an A4 page at 150 dpi, for each format
    twelve = text_page((4000, 3000), 20, 60)
    fifty = text_page((8660, 5773), 20, 120)  # 49.99 MP: just under MAX_PIXELS' 50 000 000
    found = [
        Input(
            "A4 page, 300 dpi (2480x3508 JPEG)",
            render.encode(a4, "JPEG", quality=90),
            "image/jpeg",
            "rendered",
        ),
        Input("12 MP photo (4000x3000 JPEG)", render.noisy_photo(), "image/jpeg", "rendered"),
        Input("tiny word (200x60 PNG)", render.encode(word, "PNG"), "image/png", "rendered"),
    ]
    for fmt, mime in [
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("TIFF", "tiff"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
    ]:
        found.append(
            Input(
                f"A4 page, 150 dpi (1240x1754 {fmt})",
                render.encode(page, fmt),
                f"image/{mime}",
                "rendered",
            )
        )
    found += [
        Input("12 MP page (4000x3000 PNG)", render.encode(twelve, "PNG"), "image/png", "rendered"),
        Input("50 MP page (8660x5773 PNG)", render.encode(fifty, "PNG"), "image/png", "rendered"),
        Input(
            "50 MP page (8660x5773 JPEG)",
            render.encode(fifty, "JPEG", quality=90),
            "image/jpeg",
            "rendered",
        ),
    ]
    return found


# --- measuring ------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Reads each worker's RSS every 10 ms; keeps (seconds since start, MB) whenever it changed.

    Storing change points only keeps the JSON small over long idle stretches; the curve is a
    step function through them, exactly what was read.
    """

    def __init__(self, workers: dict[str, int], started: float) -> None:
        super().__init__(daemon=True)
        self.workers, self.started = workers, started
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in workers}
        self.reads = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.read()
            self.stopping.wait(SAMPLE_SECONDS)
        self.read()  # the last value, so every curve runs to the end

    def read(self) -> None:
        now = round(time.perf_counter() - self.started, 3)
        self.reads += 1
        for name, pid in list(self.workers.items()):
            with contextlib.suppress(OSError):  # a dead worker: main() finds its successor
                mb, kept = round(harness.rss_mb(pid), 1), self.samples[name]
                if not kept or kept[-1][1] != mb or self.stopping.is_set():
                    kept.append((now, mb))

    def peak(self, name: str, start: float, end: float) -> float:
        """The largest RSS read between `start` and `end` (carried in from before `start`)."""
        kept = self.samples[name]
        before = [mb for t, mb in kept if t < start][-1:]
        return max(before + [mb for t, mb in kept if start <= t <= end], default=float("nan"))


def post(url: str, item: Input) -> tuple[int, dict]:
    """(status, JSON body); status 0 when there was no answer (the worker died)."""
    try:
        response = requests.post(
            url, data=item.data, headers={"Content-Type": item.content_type}, timeout=900
        )
    except requests.ConnectionError as error:
        return 0, {"error": {"code": f"no answer: {error.__class__.__name__}"}}
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated")
    parser.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a further configuration, run too. Repeatable",
    )
    parser.add_argument(
        "--cpus", type=int, default=None, help="run on the first N CPUs (1: the deployed shape)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/memory_mix.json"
    )
    args = parser.parse_args()
    harness.pin_cpus(args.cpus)
    defined = [harness.define(spec) for spec in args.define]
    names = list(dict.fromkeys(harness.config_names(args.configs) + defined))
    if harness.TESSERACT in names:
        sys.exit("memory_mix measures the function's configurations, not Tesseract")

    progress("rendering the inputs")
    sequence = real_pages(args.data) + rendered_inputs()
    for number, item in enumerate(sequence, 1):
        progress(f"  {number:2d}. {item.label}: {len(item.data) / 2**20:.1f} MiB")

    requests_made: list[dict] = []
    idle: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"starting {len(names)} functions-framework process(es): {', '.join(names)}")
        servers = harness.start(Path(tmp), names)
        try:
            workers = {name: server.worker_pid() for name, server in servers.items()}
            time.sleep(SETTLE_SECONDS)
            idle = {
                name: {"after_start_mb": round(harness.rss_mb(pid), 1)}
                for name, pid in workers.items()
            }
            started = time.perf_counter()
            sampler = Sampler(workers, started)
            sampler.start()
            total = args.rounds * len(sequence) * len(names)
            for round_number in range(1, args.rounds + 1):
                for number, item in enumerate(sequence, 1):
                    for name in names:  # side by side: each configuration in turn
                        pid = workers[name]
                        rss_before, cpu_before = harness.rss_mb(pid), harness.cpu_seconds(pid)
                        begin = time.perf_counter() - started
                        status, body = post(servers[name].url, item)
                        end = time.perf_counter() - started
                        if status == 0:  # gunicorn starts a new worker: follow it
                            time.sleep(SETTLE_SECONDS)
                            workers[name] = pid = servers[name].worker_pid()
                            cpu_before = harness.cpu_seconds(pid)
                        cpu = harness.cpu_seconds(pid) - cpu_before
                        time.sleep(2 * SAMPLE_SECONDS)  # one more sample after the answer
                        row = {
                            "round": round_number,
                            "input": number,
                            "label": item.label,
                            "config": name,
                            "status": status,
                            "error": body.get("error", {}).get("code"),
                            "peak_rss_mb": body.get("memory", {}).get("peak_rss_mb"),
                            "sampled_peak_mb": sampler.peak(name, begin, end + SAMPLE_SECONDS),
                            "rss_before_mb": round(rss_before, 1),
                            "rss_after_mb": round(harness.rss_mb(pid), 1),
                            "cpu_s": round(cpu, 3),
                            "ocr_ms": body.get("timings_ms", {}).get("total"),
                            "wall_ms": round((end - begin) * 1000, 1),
                            "lines": len(body.get("lines", [])),
                            "scale": body.get("image", {}).get("scale"),
                            "start_s": round(begin, 3),
                            "end_s": round(end, 3),
                        }
                        requests_made.append(row)
                        progress(
                            f"[{len(requests_made)}/{total}] round {round_number} {name:>10}  "
                            f"{item.label}: {status}, peak {row['peak_rss_mb']} MB, "
                            f"sampled {row['sampled_peak_mb']} MB, {row['cpu_s']:.2f} CPU s"
                        )
            time.sleep(SETTLE_SECONDS)
            for name, pid in workers.items():
                idle[name]["after_sequence_mb"] = round(harness.rss_mb(pid), 1)
            sampler.stopping.set()
            sampler.join()
        finally:
            for server in servers.values():
                server.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": {
            "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "configs": {name: harness.CONFIGS[name] for name in names},
            "rounds": args.rounds,
            "inputs": [
                {"input": n, "label": i.label, "source": i.source, "bytes": len(i.data)}
                for n, i in enumerate(sequence, 1)
            ],
        },
        "idle": idle,
        "requests": requests_made,
        "samples": sampler.samples,  # (s, MB) change points of reads every SAMPLE_SECONDS
        "sample_reads": sampler.reads,
    }
    args.out.write_text(json.dumps(result, indent=1))
    plot_path = args.out.with_suffix(".png")
    plot(result, plot_path)
    progress(f"wrote {args.out} and {plot_path}")
    print(table(result, names))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- reporting ------------------------------------------------------------------------------


def table(result: dict, names: list[str]) -> str:
    """Per input: max over the rounds of both peaks, median CPU; then the sequence's summary."""
    rows, inputs = result["requests"], result["meta"]["inputs"]
    head = ["input"] + [
        f"{n}: {what}" for n in names for what in ("peak MB", "sampled MB", "CPU s")
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def mine(name: str, number: int | None = None) -> list[dict]:
        return [r for r in rows if r["config"] == name and number in (None, r["input"])]

    def peak(values: list[float | None]) -> str:
        found = [v for v in values if v is not None and v == v]  # drops None and NaN
        return f"{max(found):.0f}" if found else "–"

    for item in inputs:
        cells = [f"{item['input']}. {item['label']}"]
        for name in names:
            r = mine(name, item["input"])
            failed = {f"{x['status']} {x['error'] or ''}".strip() for x in r if x["status"] != 200}
            cells += [
                peak([x["peak_rss_mb"] for x in r]) + (f" ({', '.join(failed)})" if failed else ""),
                peak([x["sampled_peak_mb"] for x in r]),
                f"{statistics.median(x['cpu_s'] for x in r):.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")

    maximum, idle = ["**sequence maximum**"], ["**idle after start-up / after the sequence**"]
    for name in names:
        maximum += [
            peak([x["peak_rss_mb"] for x in mine(name)]),
            peak([x["sampled_peak_mb"] for x in mine(name)]),
            f"{sum(x['cpu_s'] for x in mine(name)):.1f} (sum)",
        ]
        start, end = (
            result["idle"][name]["after_start_mb"],
            result["idle"][name]["after_sequence_mb"],
        )
        idle += [f"{start:.0f}", f"{end:.0f}", f"{end / start - 1:+.0%}"]
    lines += ["| " + " | ".join(maximum) + " |", "| " + " | ".join(idle) + " |"]
    duration = max(kept[-1][0] for kept in result["samples"].values() if kept)
    interval_ms = 1000 * duration / max(1, result["sample_reads"])
    notes = (
        f"\npeak MB: the response's memory.peak_rss_mb; sampled MB: the worker's RSS read from "
        f"outside every {SAMPLE_SECONDS * 1000:.0f} ms (on average every {interval_ms:.0f} ms "
        "in this run: a busy machine delays the reads) during the request; both the maximum over "
        f"{result['meta']['rounds']} round(s). CPU s: the worker's utime + stime per request "
        "(median over the rounds). Idle: the worker's RSS "
        f"{SETTLE_SECONDS:.0f} s after start-up and after the last request (and their change)."
    )
    return "\n".join(lines) + "\n" + notes


def plot(result: dict, path: Path) -> None:
    """The worker's RSS over the run, one panel per configuration, requests shaded and numbered."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = list(result["meta"]["configs"])
    figure, axes = pyplot.subplots(
        len(names), 1, figsize=(14, 3.2 * len(names) + 2.5), sharex=True, sharey=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        samples = result["samples"][name]
        ax.step(
            [t for t, _ in samples],
            [mb for _, mb in samples],
            where="post",
            lw=0.8,
            color="tab:blue",
            label="worker RSS (read every 10 ms)",
        )
        for r in (r for r in result["requests"] if r["config"] == name):
            ax.axvspan(r["start_s"], r["end_s"], color="tab:orange", alpha=0.15, lw=0)
            if r["peak_rss_mb"] is not None:
                ax.plot(r["end_s"], r["peak_rss_mb"], "x", color="tab:red", ms=4)
            ax.annotate(
                str(r["input"]),
                (r["start_s"], 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=6,
                va="top",
            )
        ax.axhline(GOAL_MB, color="tab:green", ls="--", lw=0.8, label=f"{GOAL_MB} MB goal")
        ax.plot([], [], "x", color="tab:red", label="response's peak_rss_mb")
        ax.set_ylabel(f"{name}\nRSS MB")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds (shaded: a request to this configuration, numbered by input)")
    key = "   ".join(f"{i['input']}. {i['label']}" for i in result["meta"]["inputs"])
    figure.text(0.01, 0.01, key, fontsize=6.5, wrap=True, va="bottom")
    figure.suptitle(
        f"Worker RSS over the mixed sequence ({result['meta']['rounds']} round(s), "
        f"{result['meta']['date']})"
    )
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


if __name__ == "__main__":
    main()
