"""Peak RSS and warm latency per invocation: this function vs rapidocr-onnxruntime's defaults.

    python -m bench.memory_latency [--repeats 5]

Inputs are rendered here (reproducible, no data files): a 300-dpi A4 page of text, a 12 MP
photo, and a 200x60 word. Both configurations run as real functions-framework processes at the
same time; each input goes to one, then the other, `--repeats` times after one warm-up request.
Peak RSS is the response's own `memory.peak_rss_mb` (the per-invocation high-water mark).
Writes bench/results/memory_latency.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.harness import median, ocr, start
from tests import render

CONFIGS = ["defaults", "max_side_1600"]


def inputs() -> dict[str, bytes]:
    lines = [
        f"Line {i:02d}: the quick brown fox jumps over the lazy dog 0123456789" for i in range(44)
    ]
    a4 = render.page(lines, size=(2480, 3508), font_size=42, origin=(150, 150)).image
    word = render.page(["HELLO 42"], size=(200, 60), font_size=30, origin=(10, 10)).image
    return {
        "A4 page, 300 dpi (2480x3508 JPEG)": render.encode(a4, "JPEG", quality=90),
        "12 MP photo (4000x3000 JPEG)": render.noisy_photo(),
        "200x60 word (PNG)": render.encode(word, "PNG"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/memory_latency.json"
    )
    args = parser.parse_args()

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers, cold = {}, {}
        for name in CONFIGS:  # cold start: process spawn -> GET reports the engine loaded
            spawned = time.perf_counter()
            servers.update(start(Path(tmp), [name]))
            cold[f"{name}: spawn to ready, s"] = round(time.perf_counter() - spawned, 2)
            cold[f"{name}: engine load, s"] = _engine_load_seconds(servers[name])
        try:
            for label, data in inputs().items():
                for server in servers.values():
                    ocr(server, data)  # warm-up: first-call costs are not what we measure
                runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
                for _ in range(args.repeats):
                    for name, server in servers.items():
                        runs[name].append(ocr(server, data))
                results[label] = {name: _summary(bodies) for name, bodies in runs.items()}
                print(label, json.dumps(results[label]), flush=True)
        finally:
            for server in servers.values():
                server.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cold_start": cold, "results": results}, indent=1))
    print(json.dumps(cold))
    print(table(results))


def _engine_load_seconds(server) -> float:
    import requests

    return requests.get(server.url, timeout=10).json()["engine"]["load_seconds"]


def _summary(bodies: list[dict]) -> dict[str, float]:
    return {
        "peak_rss_mb": median([b["memory"]["peak_rss_mb"] for b in bodies]),
        "ocr_ms": median([b["timings_ms"]["total"] for b in bodies]),
        "wall_ms": median([b["wall_ms"] for b in bodies]),
        "lines": median([len(b["lines"]) for b in bodies]),
        "scale": bodies[0]["image"]["scale"],
    }


def table(results: dict[str, dict]) -> str:
    lines = [
        "| input | defaults: peak RSS MB | ours: peak RSS MB | defaults: warm ms | ours: warm ms "
        "| ratio (defaults/ours) RSS, time | lines found (defaults / ours) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, by in results.items():
        d, o = by["defaults"], by["max_side_1600"]
        lines.append(
            f"| {label} | {d['peak_rss_mb']:.0f} | {o['peak_rss_mb']:.0f} | {d['ocr_ms']:.0f} | "
            f"{o['ocr_ms']:.0f} | {d['peak_rss_mb'] / o['peak_rss_mb']:.2f}x, "
            f"{d['ocr_ms'] / o['ocr_ms']:.2f}x | {d['lines']:.0f} / {o['lines']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
