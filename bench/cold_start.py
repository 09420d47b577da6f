"""Cold start: how long a new instance takes to answer, defaults vs shipped, side by side.

    python -m bench.cold_start [--repeats 5] [--configs defaults,shipped]

Each repeat starts every configuration in turn as a fresh functions-framework process, and
measures from the spawn to: `GET /` reporting the engine loaded ("ready", what a platform's
startup probe would wait for), and the answer to a first small page (what the first user
waits for; the shipped engine's warm-up run after the load can hold the engine then). It also
reports the engine's own `load_seconds` (idle memory after start-up is `bench.memory_mix`'s).
The configurations alternate within each repeat, so a noisy machine slows them alike; medians
are reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import requests

from bench.harness import CONFIGS, config_names, median
from tests import render
from tests.conftest import start_server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", default="defaults,shipped")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/cold_start.json"
    )
    args = parser.parse_args()
    names = config_names(args.configs)
    page = render.encode(render.page(["Cold start", "Invoice 2026 total 42.50"]).image, "PNG")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in names:
                runs[name].append(once(Path(tmp), name, page))
                print(f"{repeat + 1}/{args.repeats} {name}: {runs[name][-1]}", flush=True)
    summary = {
        name: {key: median([run[key] for run in found]) for key in found[0]}
        for name, found in runs.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    print("\n| config | spawn → ready s | spawn → first answer s | engine load s |")
    print("|---|---|---|---|")
    for name, row in summary.items():
        print(
            f"| {name} | {row['ready_s']:.2f} | {row['first_answer_s']:.2f} | {row['load_s']:.2f} |"
        )
    print(f"\nmedians of {args.repeats} starts each; wrote {args.out}")


def once(tmp: Path, name: str, page: bytes) -> dict[str, float]:
    spawned = time.perf_counter()
    server = start_server(tmp, LOG_LEVEL="WARNING", **CONFIGS[name])
    try:
        ready = time.perf_counter() - spawned
        status = requests.get(server.url, timeout=10).json()
        response = requests.post(
            server.url, data=page, headers={"Content-Type": "image/png"}, timeout=120
        )
        response.raise_for_status()
        return {
            "ready_s": round(ready, 3),
            "first_answer_s": round(time.perf_counter() - spawned, 3),
            "load_s": status["engine"]["load_seconds"],
        }
    finally:
        server.stop()


if __name__ == "__main__":
    main()
