"""CPU time and memory per page on one CPU: what the deployment's per-page cost is computed from.

    python -m bench.cost [--repeats 5]

The deployment (deploy/) gives each instance 1 vCPU, so the function runs here pinned to one CPU
(this process and everything it starts: OCR_THREADS follows the affinity and is 1), with the
environment it is deployed with (deploy/env.yaml), beside the same with MAX_SIDE=1600 (what the
previous runs measured): both at once, every input to each in turn. Inputs are rendered here:
a dense A4 page at 300 dpi and a 12 MP photo. Per request: wall time, the serving worker's CPU
seconds (user + system, every thread, from /proc) and the reported peak RSS; medians after one
warm-up request.
Per configuration, what sizes the instance: the worker's RSS once the engine is loaded (idle),
gunicorn's master's RSS, and master + the worker's high-water mark (VmHWM) after every request.
Writes bench/results/cost.json and Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import yaml

from bench.harness import median, ocr
from tests import render
from tests.conftest import ROOT, Server, start_server

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
DEPLOYED = yaml.safe_load((ROOT / "deploy/env.yaml").read_text())
CONFIGS = {"deployed": DEPLOYED, "deployed, MAX_SIDE=1600": {**DEPLOYED, "MAX_SIDE": "1600"}}


def inputs() -> dict[str, bytes]:
    """A dense page and a photo: the two ends of what one invocation costs."""
    lines = [
        f"Line {i:02d}: the quick brown fox jumps over the lazy dog 0123456789" for i in range(44)
    ]
    a4 = render.page(lines, size=(2480, 3508), font_size=42, origin=(150, 150)).image
    return {
        "A4 page, 300 dpi (2480x3508 JPEG)": render.encode(a4, "JPEG", quality=90),
        "12 MP photo (4000x3000 JPEG)": render.noisy_photo(),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (proc(5): stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def status_mb(pid: int, field: str) -> float:
    """A /proc/PID/status memory field (VmRSS, VmHWM), in MB of 2^20 bytes, as the function's."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)  # the field is in kB (2^10 bytes)
    raise KeyError(field)


def measure(servers: dict[str, Server], repeats: int) -> dict[str, dict]:
    """Every input to every configuration in turn, so a noisy machine slows them alike."""
    workers = {config: server.worker_pid() for config, server in servers.items()}
    results = {
        config: {"worker_idle_mb": status_mb(workers[config], "VmRSS"), "pages": {}}
        for config in servers
    }
    for name, data in inputs().items():
        runs = {config: {"wall": [], "cpu": [], "peak": [], "lines": 0} for config in servers}
        for server in servers.values():
            ocr(server, data)  # warm-up
        for _ in range(repeats):
            for config, server in servers.items():
                before = cpu_seconds(workers[config])
                body = ocr(server, data)
                runs[config]["cpu"].append(cpu_seconds(workers[config]) - before)
                runs[config]["wall"].append(body["wall_ms"] / 1000)
                runs[config]["peak"].append(body["memory"]["peak_rss_mb"])
                runs[config]["lines"] = len(body["lines"])
        for config, run in runs.items():
            results[config]["pages"][name] = {
                "wall_s": round(median(run["wall"]), 2),
                "cpu_s": round(median(run["cpu"]), 2),
                "peak_rss_mb": round(max(run["peak"]), 1),
                "lines": run["lines"],
            }
    for config, server in servers.items():
        master = status_mb(server.process.pid, "VmRSS")
        results[config]["master_mb"] = master
        results[config]["instance_peak_mb"] = round(master + status_mb(workers[config], "VmHWM"), 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/cost.json")
    args = parser.parse_args()

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one CPU, inherited by the servers
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, Server] = {}
        try:
            for config, env in CONFIGS.items():
                servers[config] = start_server(Path(tmp), **env)
            results = measure(servers, args.repeats)
        finally:
            for server in servers.values():
                server.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| configuration | input | wall s (median) | worker CPU s (median) | peak RSS MB (max) |")
    print("|---|---|---|---|---|")
    for config, result in results.items():
        for name, row in result["pages"].items():
            print(
                f"| {config} | {name} | {row['wall_s']} | {row['cpu_s']} | {row['peak_rss_mb']} |"
            )
    print()
    print("| configuration | worker idle MB | master MB | instance peak MB (master + worker HWM) |")
    print("|---|---|---|---|")
    for config, r in results.items():
        print(f"| {config} | {r['worker_idle_mb']} | {r['master_mb']} | {r['instance_peak_mb']} |")


if __name__ == "__main__":
    main()
