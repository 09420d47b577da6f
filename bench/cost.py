"""CPU time and memory per page on one CPU: what the deployment's per-page cost is computed from.

    python -m bench.cost [--repeats 5]

The deployment (deploy/) gives each instance 1 vCPU, so the function runs here pinned to one CPU
(this process and everything it starts: OCR_THREADS follows the affinity and is 1). Inputs are
memory_latency's rendered A4 page and 12 MP photo. Per request: wall time, the serving worker's
CPU seconds (user + system, every thread, from /proc) and the reported peak RSS; medians after
one warm-up request. Writes bench/results/cost.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.harness import median, ocr, start
from bench.memory_latency import inputs

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (proc(5): stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/cost.json")
    args = parser.parse_args()

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one CPU, inherited by the server
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = start(Path(tmp), ["max_side_1600"])["max_side_1600"]
        try:
            worker = server.worker_pid()
            for name, data in inputs().items():
                if "word" in name:
                    continue
                ocr(server, data)  # warm-up
                walls, cpus, peaks = [], [], []
                for _ in range(args.repeats):
                    before = cpu_seconds(worker)
                    body = ocr(server, data)
                    cpus.append(cpu_seconds(worker) - before)
                    walls.append(body["wall_ms"] / 1000)
                    peaks.append(body["memory"]["peak_rss_mb"])
                results[name] = {
                    "wall_s": round(median(walls), 2),
                    "cpu_s": round(median(cpus), 2),
                    "peak_rss_mb": round(max(peaks), 1),
                    "lines": len(body["lines"]),
                }
        finally:
            server.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| input | wall s (median) | worker CPU s (median) | peak RSS MB (max) |")
    print("|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['wall_s']} | {row['cpu_s']} | {row['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
