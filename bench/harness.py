"""What the benchmarks share: the engines side by side, per-request cost from /proc, and scoring.

Each configuration of the function runs as its own real functions-framework process (started
like the tests start theirs); Tesseract 5 runs as a process per image. Every input goes to every
engine in turn, so a noisy machine slows all of them alike and the ratios measured in one run
hold. CPU time is the serving process's own (utime + stime from /proc, see proc(5)), not the
machine's.
"""

from __future__ import annotations

import html
import os
import re
import statistics
import subprocess
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from tests.conftest import Server, start_server

# The function's configurations, by name: environment on top of the function's own defaults.
CONFIGS: dict[str, dict[str, str]] = {
    # rapidocr-onnxruntime's own settings at full resolution: detector upscaling to 736 px,
    # angle classifier on
    "defaults": {"MEMORY_OPTIMIZATION": "false", "USE_ANGLE_CLS": "true"},
    "shipped": {},  # whatever the function ships with: no environment at all
    "v6": {"OCR_MODEL": "v6"},  # the shipped function with PP-OCRv6 (issue 20)
    "max_side_1280": {"MAX_SIDE": "1280"},
    "max_side_1600": {"MAX_SIDE": "1600"},  # the shipped default until issue 12
    "max_side_2000": {"MAX_SIDE": "2000"},
    "max_side_1600_cls": {"MAX_SIDE": "1600", "USE_ANGLE_CLS": "true"},
    "no_rotate": {"AUTO_ROTATE": "false"},  # the shipped function before issue 19
}
TESSERACT = "tesseract"  # the peer: not a configuration of the function
TESSERACT_OSD = "tesseract_osd"  # the peer's orientation detection alone (--psm 0)
PEERS = (TESSERACT, TESSERACT_OSD)
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def define(spec: str) -> str:
    """Add a configuration from `NAME:KEY=VALUE,KEY=VALUE` (the command lines' --define)."""
    name, _, settings = spec.partition(":")
    if not name or name in PEERS or not all("=" in item for item in settings.split(",")):
        raise ValueError(f"--define wants NAME:KEY=VALUE[,KEY=VALUE...], not {spec!r}")
    CONFIGS[name] = dict(item.split("=", 1) for item in settings.split(",") if item)
    return name


def config_names(names: str) -> list[str]:
    """Comma-separated names, each a known configuration or a Tesseract peer."""
    chosen = [n for n in names.split(",") if n]
    unknown = [n for n in chosen if n not in CONFIGS and n not in PEERS]
    if unknown:
        known = ", ".join([*CONFIGS, *PEERS])
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {known} (or --define)")
    return chosen


# --- the engines --------------------------------------------------------------------------


@dataclass
class Reading:
    """One image read by one engine: the text and what it cost."""

    text: str
    ms: float  # the function's own timings_ms.total; Tesseract's process wall time
    wall_ms: float  # as the client saw it
    cpu_s: float  # the serving process's utime + stime for this request
    peak_rss_mb: float  # the function's memory.peak_rss_mb; Tesseract's maxrss
    extra: dict = field(default_factory=dict)


def pin_cpus(count: int | None) -> int:
    """Run this process, and every engine it starts from now on, on its first `count` CPUs.

    `--cpus 1` is the shape of the instance deploy/ makes (1 vCPU). Every engine sizes its
    threads from the CPUs it may use (the function from its affinity and cgroup quota, rapidocr's
    ONNX Runtime and Tesseract from their affinity), so on a bigger machine they trade CPU time
    for wall time in a way the deployed function does not. Returns the CPUs in use.
    """
    if count is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:count])
    return len(os.sched_getaffinity(0))


def start(tmp: Path, names: list[str]) -> dict[str, Server]:
    """One functions-framework process per configuration, engine loaded."""
    base = {"ENABLE_GC_AFTER_REQUEST": "true", "LOG_LEVEL": "WARNING"}
    return {name: start_server(tmp, **base, **CONFIGS[name]) for name in names}


def ocr(server: Server, data: bytes) -> dict:
    """POST one image; returns the response body plus the client-side wall time."""
    started = time.perf_counter()
    response = requests.post(
        server.url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=600
    )
    wall_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return {**response.json(), "wall_ms": round(wall_ms, 1)}


def read_with_function(server: Server, data: bytes) -> Reading:
    """OCR through the function over HTTP, with the worker's CPU time around the request."""
    worker = server.worker_pid()
    cpu_before = cpu_seconds(worker)
    body = ocr(server, data)
    extra = {"lines": len(body.get("lines", []))}
    if "blocks" in body:  # newer responses group lines into blocks (issue 8)
        extra["blocks"] = len(body["blocks"])
    if "rotation" in body:  # the turn applied to read the page upright (issue 19)
        extra["rotation"] = body["rotation"]
    return Reading(
        text=body["text"],
        ms=body["timings_ms"]["total"],
        wall_ms=body["wall_ms"],
        cpu_s=round(cpu_seconds(worker) - cpu_before, 3),
        peak_rss_mb=body["memory"]["peak_rss_mb"],
        extra=extra,
    )


def read_with_tesseract(path: Path, language: str, psm: int | None = None) -> Reading:
    """`tesseract FILE stdout -l LANG [--psm N]`; CPU and peak RSS of that child from wait4(2).

    One OpenMP thread (OMP_THREAD_LIMIT=1), Tesseract's own advice for throughput: on a
    shared 2-core machine its threads otherwise spin and double its CPU time for no gain.
    """
    command = ["tesseract", str(path), "stdout", "-l", language]
    if psm is not None:
        command += ["--psm", str(psm)]
    return _tesseract(command)


def tesseract_orientation(path: Path) -> Reading:
    """Tesseract's orientation detection alone (`--psm 0`, the `osd` model): no text, and
    `extra["rotation"]`, its clockwise turn to upright ("Rotate:"), or None where it finds too
    few characters to say (it then exits with an error)."""
    try:
        reading = _tesseract(["tesseract", str(path), "stdout", "--psm", "0"])
    except TesseractFailed as failed:
        reading = failed.reading
    found = re.search(r"^Rotate: (\d+)", reading.text, re.MULTILINE)
    reading.extra["rotation"] = int(found.group(1)) if found else None
    reading.text = ""
    return reading


class TesseractFailed(RuntimeError):
    def __init__(self, message: str, reading: Reading) -> None:
        super().__init__(message)
        self.reading = reading


def _tesseract(command: list[str]) -> Reading:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # Popen.wait would not give the rusage
        wall_ms = round((time.perf_counter() - started) * 1000, 1)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        text = stdout.read().decode(errors="replace")
        errors = stderr.read().decode(errors="replace")
    reading = Reading(
        text=text,
        ms=wall_ms,
        wall_ms=wall_ms,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
    )
    if child.returncode != 0:
        raise TesseractFailed(f"{' '.join(command)} failed: {errors}", reading)
    return reading


# --- /proc --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (proc(5): fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (proc(5): the second field of /proc/PID/statm)."""
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_BYTES / 2**20


# --- scoring ------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The data sets' suggested scoring: NFKC, no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def words(text: str) -> list[str]:
    """Whitespace-separated words after NFKC, lower-cased: a glued pair is one (wrong) word."""
    return unicodedata.normalize("NFKC", text).lower().split()


def cer(truth: str, found: str) -> float:
    """Character error rate in reading order (of already normalised strings)."""
    return Levenshtein.distance(truth, found) / max(1, len(truth))


def bag_f1(truth: str | list[str], found: str | list[str]) -> float:
    """Order-insensitive F1 over counts of characters (or of words, given lists)."""
    t, f = Counter(truth), Counter(found)
    if not t and not f:
        return 1.0
    common = sum((t & f).values())
    if not common:
        return 0.0
    precision, recall = common / sum(f.values()), common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def score(truth: str, found: str, case_insensitive: bool = False, ignore: str = "") -> dict:
    """CER, bag-of-characters F1, words F1 and exact match of one image.

    `ignore`: characters dropped from what was found before scoring (the plates' separator
    dot, which their ground truth leaves out). Words are always compared case-insensitively.
    """
    found = found.translate({ord(c): None for c in ignore})
    chars_t, chars_f = normalise(truth), normalise(found)
    if case_insensitive:
        chars_t, chars_f = chars_t.lower(), chars_f.lower()
    return {
        "cer": round(cer(chars_t, chars_f), 4),
        "bag_f1": round(bag_f1(chars_t, chars_f), 4),
        "words_f1": round(bag_f1(words(truth), words(found)), 4),
        "exact": chars_t == chars_f,
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 3) if values else float("nan")


# --- tables: rows on one line -------------------------------------------------------------

# Pages whose ground truth reads in an order no reader would use, scored apart from the rest
# (the evidence for each is in docs/layout.md). Per set, page name -> why.
WRONG_ORDER: dict[str, dict[str, str]] = {
    "scribe_docs": {
        "deposition_01": "a 4-up transcript sheet read 64, 66, 65, 67 (64 runs on into 65)",
        "multicol_02": "the sidebar's tables read before its heading, the logo split by a date",
        "table_02": "a bank statement read column by column",
        "table_05": "a four-column table read column by column",
    },
    "zh_pdf_docs": {
        "mineru_report_p004": "a paragraph beside a table interleaved with its rows, line by line",
    },
}
ROW_MATCH = 85  # rapidfuzz partial_ratio of a reference row against one line of the output
HOCR_BOX = r"""class=['"](ocr_line|ocrx_word)['"][^>]*?title=['"]bbox ([\d ]+)[^>]*>([^<]*)"""
CELL_GAP = 1.5  # a gap between two words wider than this many word heights separates cells


def table_rows(hocr: str) -> list[str]:
    """The rows of two cells or more in an hOCR ground truth, each its words left to right.

    Built from the ground truth's word boxes (corrected by hand), not from its line order,
    which on some pages reads a table column by column: lines whose boxes overlap vertically
    by half the smaller one's height are one row; a gap over `CELL_GAP` word heights is a cell
    boundary.
    """
    lines: list[list[tuple[tuple[int, ...], str]]] = []
    for kind, box, word in re.findall(HOCR_BOX, hocr):
        if kind == "ocr_line":
            lines.append([])
        elif lines and (word := html.unescape(word).strip()):
            lines[-1].append((tuple(int(v) for v in box.split()), word))
    lines = [words for words in lines if words]
    lines.sort(key=lambda words: min(b[1] + b[3] for b, _w in words))
    rows: list[list[tuple[tuple[int, ...], str]]] = []
    row_box = None
    for words in lines:
        top, bottom = min(b[1] for b, _ in words), max(b[3] for b, _ in words)
        if row_box and min(bottom, row_box[1]) - max(top, row_box[0]) >= 0.5 * min(
            bottom - top, row_box[1] - row_box[0]
        ):
            rows[-1] += words
            row_box = (min(top, row_box[0]), max(bottom, row_box[1]))
        else:
            rows.append(list(words))
            row_box = (top, bottom)
    found_rows = []
    for words in rows:
        words.sort(key=lambda w: w[0][0])
        height = statistics.median(b[3] - b[1] for b, _ in words)
        cells = 1 + sum(
            b[0][0] - a[0][2] > CELL_GAP * height for a, b in zip(words, words[1:], strict=False)
        )
        if cells >= 2:
            found_rows.append(normalise(" ".join(w for _, w in words)).lower())
    return found_rows


def rows_read(rows: list[str], text: str) -> int:
    """How many reference rows come back on one line of `text`, their cells in order."""
    lines = [normalise(line).lower() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return sum(
        any(
            len(line) >= 0.8 * len(row) and fuzz.partial_ratio(row, line) >= ROW_MATCH
            for line in lines
        )
        for row in rows
    )
