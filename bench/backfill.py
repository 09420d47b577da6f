"""Backfill throughput: objects per second for 1, 2 and 4 local tasks, and peak RSS per task.

    python -m bench.backfill [--data ../shared/data] [--objects 16] [--tasks 1,2,4]

Each run is `python -m local_runner backfill BUCKET --tasks K` (each task in an emulated 4 GiB
instance pinned to the machine's CPUs) over a fresh bucket of a real Cloud Storage emulator
holding the same M scanned receipts (read in place from the evaluation set and uploaded). The
job's wall time includes every task's start-up and engine load, as a job execution's does; the
kernel's peak RSS per task comes from the runner (wait4). Runs go one after another in one
process, so the ratios between them hold on a noisy machine. Results: bench/results/backfill.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import ROOT, free_port
from tests.emulator import Emulator

TASK_END = re.compile(
    r"task (\d+) attempt \d+ (\w+).* after ([\d.]+) s, CPU ([\d.]+) s, peak RSS ([\d.]+) MiB"
)
FINISHED = re.compile(r"task (\d+): .*finished: .* objects_per_s=([\d.]+) .*list_ms_per_page=(\S+)")


def run_job(emulator: Emulator, bucket: str, tasks: int) -> dict[str, object]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUD_RUN_")},
        "STORAGE_EMULATOR_HOST": emulator.url,
        "LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "local_runner", "backfill", bucket, "--tasks", str(tasks)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"backfill with {tasks} task(s) failed:\n{done.stdout}{done.stderr}")
    ends = [TASK_END.search(line) for line in done.stdout.splitlines()]
    finished = [FINISHED.search(line) for line in done.stdout.splitlines()]
    return {
        "tasks": tasks,
        "load_average_1min_after": round(os.getloadavg()[0], 1),  # the machine is shared
        "wall_s": round(wall, 2),
        "task_peak_rss_mib": [float(m[5]) for m in ends if m],
        "task_wall_s": [float(m[3]) for m in ends if m],
        "task_cpu_s": [float(m[4]) for m in ends if m],
        "task_objects_per_s": [float(m[2]) for m in finished if m],
        "list_ms_per_page": [m[3] for m in finished if m],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--objects", type=int, default=16, help="receipts per bucket (16)")
    parser.add_argument("--tasks", default="1,2,4", help="task counts to run (1,2,4)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/backfill.json")
    args = parser.parse_args()
    images = sorted((args.data / "sroie_receipts").glob("*.jpg"))[: args.objects]
    if len(images) < args.objects:
        sys.exit(f"only {len(images)} receipts under {args.data / 'sroie_receipts'}")
    counts = [int(count) for count in args.tasks.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        emulator = Emulator(Path(tmp) / "data", free_port(), Path(tmp) / "emulator.log")
        emulator.start()
        try:
            runs = []
            for tasks in counts:
                bucket = f"bench-{tasks}-tasks"
                emulator.create_bucket(bucket)
                for image in images:
                    emulator.upload(bucket, f"scans/{image.name}", image.read_bytes(), "image/jpeg")
                result = run_job(emulator, bucket, tasks)
                result["objects"] = len(images)
                result["objects_per_s"] = round(len(images) / result["wall_s"], 3)
                result["cpu_s_per_object"] = round(sum(result["task_cpu_s"]) / len(images), 2)
                runs.append(result)
                print(json.dumps(result), flush=True)
        finally:
            emulator.stop()

    base = runs[0]["objects_per_s"]
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "objects": len(images),
        "input": f"sroie_receipts, first {len(images)} JPEGs",
        "runs": runs,
        "speedup_vs_first": [round(run["objects_per_s"] / base, 2) for run in runs],
        "median_task_peak_rss_mib": [
            statistics.median(run["task_peak_rss_mib"]) for run in runs if run["task_peak_rss_mib"]
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
