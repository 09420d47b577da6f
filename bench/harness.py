"""What both benchmarks share: servers side by side, one request at a time, and scoring.

Each configuration runs as its own real functions-framework process (started like the tests
start theirs); images are sent to every configuration in turn, so a noisy machine slows all of
them alike and the ratios measured in one run hold.
"""

from __future__ import annotations

import statistics
import time
import unicodedata
from collections import Counter
from pathlib import Path

import requests
from rapidfuzz.distance import Levenshtein

from tests.conftest import Server, start_server

CONFIGS: dict[str, dict[str, str]] = {
    # rapidocr-onnxruntime's own settings: detector upscaling to 736 px, angle classifier on
    "defaults": {"MEMORY_OPTIMIZATION": "false", "USE_ANGLE_CLS": "true"},
    "max_side_1280": {"MAX_SIDE": "1280"},
    "max_side_1600": {"MAX_SIDE": "1600"},  # the shipped default
    "max_side_2000": {"MAX_SIDE": "2000"},
    "max_side_1600_cls": {"MAX_SIDE": "1600", "USE_ANGLE_CLS": "true"},
}


def start(tmp: Path, names: list[str]) -> dict[str, Server]:
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


def normalise(text: str) -> str:
    """The data sets' suggested scoring: NFKC, no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def cer(truth: str, found: str) -> float:
    """Character error rate in reading order."""
    return Levenshtein.distance(truth, found) / max(1, len(truth))


def bag_f1(truth: str, found: str) -> float:
    """Order-insensitive F1 over character counts (table and column order do not count)."""
    t, f = Counter(truth), Counter(found)
    common = sum((t & f).values())
    if not common:
        return 0.0
    precision, recall = common / sum(f.values()), common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")
