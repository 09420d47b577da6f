"""`load`: a bounded load driver for a local instance (loopback only).

It posts the images of a directory (other files are skipped), or one image file, at a fixed
concurrency and stops by itself after --requests or --duration, whichever comes first. While it
runs it samples the instance's memory (every process serving the port, summed), so the answer
to "does memory grow with traffic?" comes with the numbers that matter: status counts, latency
percentiles, throughput, peak RSS, and what each file got and read.
"""

from __future__ import annotations

import ipaddress
import json
import math
import mimetypes
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .processes import listening_pid, peak_mb, reset_peaks

_SAMPLE_SECONDS = 0.02
NO_ANSWER = "no answer"
_PROGRESS_SECONDS = 2.0


class LoadError(ValueError):
    """The run cannot start as asked; the message says why."""


def require_loopback(url: str) -> None:
    """Refuse anything but this machine: this is a tool for a laptop, not for a service."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise LoadError(f"{url}: only loopback URLs (127.0.0.0/8, ::1, localhost) are allowed")


# What the function decodes (see function.images.FORMATS), by file name.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".mpo", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def image_files(path: Path) -> tuple[list[Path], list[Path]]:
    """The images to send from a directory (or one file), and the other files left out.

    An evaluation folder often holds ground truth beside each image (scan.jpg + scan.txt):
    posting the .txt files would only measure the 400s they get.
    """
    if path.is_file():
        candidates = [path]
    elif path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        raise LoadError(f"{path}: no such file or directory")
    images = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [p for p in candidates if p not in images]
    if not images:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise LoadError(f"{path} holds no image files to send (by name: {kinds})")
    return images, skipped


def require_an_answer(url: str, timeout: float) -> None:
    """Refuse to start when nothing answers: every request would fail without a status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:  # any status is an answer (503 while the engine loads)
        return
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise LoadError(
            f"nothing answers at {url} ({reason}). Start the function first: "
            "functions-framework --target=ocr --port 8080, or python -m local_runner serve"
        ) from None


@dataclass
class FileStats:
    """What one image file got: statuses, latencies of its 200s, and what was read."""

    statuses: Counter = field(default_factory=Counter)
    ok_seconds: list[float] = field(default_factory=list)
    lines: int | None = None
    text: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "status": dict(sorted(self.statuses.items())),
            "latency_ms_200": _percentiles(self.ok_seconds),
            "lines": self.lines,
            "text": self.text,
        }


@dataclass
class Run:
    """Everything the workers record, behind one lock."""

    url: str
    files: list[Path]
    total: int | None
    deadline: float | None
    timeout: float
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    reported_peak_mb: float = 0.0
    per_file: dict[str, FileStats] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_index(self) -> int | None:
        with self.lock:
            if self.total is not None and self.sent >= self.total:
                return None
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return None
            self.sent += 1
            return self.sent - 1

    def worker(self) -> None:
        while (index := self.next_index()) is not None:
            path = self.files[index % len(self.files)]
            status, seconds, body = self._post(path)
            with self.lock:
                self.statuses[status] += 1
                self.latencies.setdefault(status, []).append(seconds)
                stats = self.per_file.setdefault(path.name, FileStats())
                stats.statuses[status] += 1
                if status == "200":
                    stats.ok_seconds.append(seconds)
                    self._record_result(stats, body)

    def _record_result(self, stats: FileStats, body: bytes) -> None:
        try:
            result = json.loads(body)
            peak = float(result["memory"]["peak_rss_mb"])
            lines, text = len(result["lines"]), str(result["text"])
        except (ValueError, KeyError, TypeError):
            return
        self.reported_peak_mb = max(self.reported_peak_mb, peak)
        stats.lines, stats.text = lines, text

    def _post(self, path: Path) -> tuple[str, float, bytes]:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        request = urllib.request.Request(
            self.url, data=path.read_bytes(), headers={"Content-Type": content_type}
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body, status = response.read(), str(response.status)
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), str(exc.code)
        except OSError as exc:  # refused, reset, timed out: the instance did not answer
            reason = getattr(exc, "reason", exc)
            name = type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
            return f"{NO_ANSWER} ({name})", time.monotonic() - started, b""
        return status, time.monotonic() - started, body

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith(NO_ANSWER))

    @property
    def unanswered(self) -> int:
        return sum(self.statuses.values()) - self.answered

    def progress(self, final: bool) -> None:
        """A progress line on stderr every few seconds, and at the end."""
        now = time.monotonic()
        if not final and now - self.last_progress < _PROGRESS_SECONDS:
            return
        self.last_progress = now
        counts = "  ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        print(f"  {self.answered} answered  {counts}  {now - self.started:.1f} s", file=sys.stderr)


class PeakSampler(threading.Thread):
    """Samples the instance's summed high-water marks until stopped; keeps the largest."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self.reset = reset_peaks(pid)  # otherwise the marks could predate the run
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.wait(_SAMPLE_SECONDS):
            now = peak_mb(self.pid)
            if now is not None:
                self.peak_mb = max(self.peak_mb, now)

    def stop(self) -> float:
        self._finished.set()
        self.join()
        return self.peak_mb


def run(
    url: str,
    images: Path,
    concurrency: int,
    requests: int | None,
    duration: float | None,
    timeout: float,
) -> dict[str, object]:
    """Drive the load and return the summary (also printed by the CLI)."""
    require_loopback(url)
    files, skipped = image_files(images)
    require_an_answer(url, min(timeout, 10.0))
    pid = listening_pid(urlsplit(url).port or 80)
    limit = f"{requests} requests" if requests else f"{duration:g} s"
    print(
        f"load: {limit} to {url}, concurrency {concurrency}, "
        f"{len(files)} image file(s) from {images}",
        flush=True,
    )
    if skipped:
        names = ", ".join(p.name for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"load: skipped {len(skipped)} file(s) that are not images: {names}", flush=True)
    sampler = PeakSampler(pid) if pid is not None else None
    if sampler is not None:
        sampler.start()
    load = Run(url, files, requests, time.monotonic() + duration if duration else None, timeout)
    with ThreadPoolExecutor(concurrency) as pool:
        workers = [pool.submit(load.worker) for _ in range(concurrency)]
        while not all(w.done() for w in workers):
            time.sleep(0.1)
            load.progress(final=False)
        for w in workers:
            w.result()
    load.progress(final=True)
    elapsed = time.monotonic() - load.started
    everything = [
        s
        for status, seconds in load.latencies.items()
        if not status.startswith(NO_ANSWER)
        for s in seconds
    ]
    return {
        "url": url,
        "concurrency": concurrency,
        "requests": load.answered + load.unanswered,
        "answered": load.answered,
        "unanswered": load.unanswered,
        "seconds": round(elapsed, 2),
        "status": dict(sorted(load.statuses.items())),
        "latency_ms": _percentiles(everything),
        "latency_ms_200": _percentiles(load.latencies.get("200", [])),
        "throughput_rps": round(load.answered / elapsed, 2),
        "ok_rps": round(load.statuses["200"] / elapsed, 2),
        "instance_pid": pid,
        "peak_rss_mb": sampler.stop() if sampler else None,
        "peak_reset": sampler.reset if sampler else False,
        "reported_peak_rss_mb": load.reported_peak_mb or None,
        "files": {name: stats.to_dict() for name, stats in sorted(load.per_file.items())},
    }


def _percentiles(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ordered = sorted(seconds)

    def rank(p: float) -> float:  # nearest-rank percentile
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}


def summary(result: dict[str, object]) -> str:
    """The result as the CLI prints it."""
    status = "  ".join(f"{code}: {n}" for code, n in result["status"].items())
    lines = [
        ("status", status),
        ("latency", _latency(result["latency_ms"]) + "  (every answer)"),
        ("latency 200", _latency(result["latency_ms_200"])),
        (
            "throughput",
            f"{result['throughput_rps']} answers/s, {result['ok_rps']} OCR results/s "
            f"over {result['seconds']} s",
        ),
    ]
    if result["peak_rss_mb"] is None:
        lines.append(("peak rss", "unknown: no process on this machine listens on that port"))
    else:
        lines.append(
            (
                "peak rss",
                f"{result['peak_rss_mb']} MiB (instance pid {result['instance_pid']}, all its "
                "processes, sampled every 20 ms)",
            )
        )
    if result["reported_peak_rss_mb"]:
        lines.append(
            ("reported", f"{result['reported_peak_rss_mb']} MiB: largest memory.peak_rss_mb")
        )
    width = max(len(name) for name, _ in lines)
    text = [f"{name:<{width}}  {value}" for name, value in lines]
    return "\n".join(text + ["", *_per_file(result["files"])])


def _per_file(files: dict[str, dict[str, object]]) -> list[str]:
    """One row per image: what it got, how fast, and the start of what was read."""
    rows = [("file", "status", "p50 200", "lines", "text")]
    for name, stats in files.items():
        status = " ".join(f"{code}:{n}" for code, n in stats["status"].items())
        p50 = f"{stats['latency_ms_200']['p50']:.0f} ms" if stats["latency_ms_200"] else "-"
        lines = "-" if stats["lines"] is None else str(stats["lines"])
        text = stats["text"].replace("\n", " | ")
        rows.append((name, status, p50, lines, text[:48] + ("..." if len(text) > 48 else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    ]


def _latency(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "n/a"
    return "  ".join(f"{name} {value:.0f} ms" for name, value in stats.items())
