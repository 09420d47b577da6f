"""`load`: a bounded load driver for a local instance (loopback only).

It posts images from a directory at a fixed concurrency and stops by itself after --requests
or --duration, whichever comes first. While it runs it samples the instance's memory (every
process serving the port, summed), so the answer to "does memory grow with traffic?" comes with
the numbers that matter: status counts, latency percentiles, throughput and peak RSS.
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


def image_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise LoadError(f"{directory} holds no files to send")
    return files


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
            status, seconds, peak = self._post(path)
            with self.lock:
                self.statuses[status] += 1
                self.latencies.setdefault(status, []).append(seconds)
                self.reported_peak_mb = max(self.reported_peak_mb, peak)

    def _post(self, path: Path) -> tuple[str, float, float]:
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
            return f"error ({type(exc).__name__})", time.monotonic() - started, 0.0
        seconds = time.monotonic() - started
        try:
            peak = float(json.loads(body)["memory"]["peak_rss_mb"])
        except (ValueError, KeyError, TypeError):
            peak = 0.0
        return status, seconds, peak

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

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
    directory: Path,
    concurrency: int,
    requests: int | None,
    duration: float | None,
    timeout: float,
) -> dict[str, object]:
    """Drive the load and return the summary (also printed by the CLI)."""
    require_loopback(url)
    files = image_files(directory)
    pid = listening_pid(urlsplit(url).port or 80)
    limit = f"{requests} requests" if requests else f"{duration:g} s"
    print(
        f"load: {limit} to {url}, concurrency {concurrency}, "
        f"{len(files)} image file(s) from {directory}",
        flush=True,
    )
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
    everything = [s for seconds in load.latencies.values() for s in seconds]
    return {
        "url": url,
        "concurrency": concurrency,
        "requests": load.answered,
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
    return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)


def _latency(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "n/a"
    return "  ".join(f"{name} {value:.0f} ms" for name, value in stats.items())
