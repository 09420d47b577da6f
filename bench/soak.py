"""Soak: thousands of varied requests through one process; does its memory creep?

Each configuration (an environment on top of the defaults) runs as its own functions-framework
process. Requests are sent in rounds: in each round, for each configuration in turn, `--clients`
clients post one request each at the same time; when all have answered, the worker's memory is
sampled (RSS, and PSS/USS through psutil). So every sample is "between requests", the
configurations see the same requests in the same order, and a noisy machine slows all of them
alike. About `--bad` of the requests are bad (truncated JPEG, garbage, empty body, broken JSON,
a decompression bomb), and every answer is checked against what it should be.

    python -m bench.soak --requests 2000 --clients 4 \\
        --config default= --config arena2=MALLOC_ARENA_MAX=2 --config threads4=THREADS=4

Summary per configuration: idle RSS after start-up, drift (median of the last tenth / of the
first tenth; and of the last third / first third, the goal's measure), slope in MiB per 1,000
requests, the largest sample against idle, and wrong answers. `--plot` writes a PNG,
`--json` the samples.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
from PIL import Image

from tests import render
from tests.conftest import Server, start_server

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
_MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get."""

    name: str
    body: bytes
    content_type: str
    status: int
    code: str | None = None  # the error code expected, for a bad request
    form: str = "raw"  # raw, multipart or json

    def send(self, url: str) -> requests.Response:
        if self.form == "multipart":
            files = {"file": ("image", self.body, self.content_type)}
            return requests.post(url, files=files, timeout=300)
        if self.form == "json":
            body = json.dumps({"image": base64.b64encode(self.body).decode()}).encode()
            return _post(url, body, "application/json")
        return _post(url, self.body, self.content_type)

    def judge(self, response: requests.Response) -> str | None:
        """None if the answer is right, else what was wrong."""
        if response.status_code != self.status:
            return f"{self.name}: {response.status_code} {response.text[:200]}"
        if self.code is not None and response.json()["error"]["code"] != self.code:
            return f"{self.name}: code {response.json()['error']['code']}, expected {self.code}"
        return None


def _post(url: str, body: bytes, content_type: str) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=300)


def good_cases(data: Path | None, light: bool = False) -> list[Case]:
    """Real evaluation images where available (never copied), plus rendered ones in every format.

    `light` keeps to images under 1.5 MP (a busy shared machine), which still vary in size.
    """
    cases = []
    if data is not None and data.is_dir():
        picks = {"sroie_receipts": 6, "zh_pdf_slides": 3, "cn_plates": 6, "zh_pdf_docs": 2}
        for folder, count in picks.items():
            files = sorted(p for p in (data / folder).iterdir() if p.suffix in (".jpg", ".png"))
            if light:
                files = [p for p in files if _pixels(p) < 1_500_000]
            for path in files[:count]:
                kind = "image/jpeg" if path.suffix == ".jpg" else "image/png"
                cases.append(Case(f"{folder}/{path.name}", path.read_bytes(), kind, 200))
    lines = ["Invoice 2026-117", "Total due 42.50 EUR", "Thank you"]
    for i, (fmt, kind) in enumerate(
        [("PNG", "image/png"), ("WEBP", "image/webp"), ("TIFF", "image/tiff"),
         ("GIF", "image/gif"), ("JPEG", "image/jpeg")]
    ):  # fmt: skip
        size = [(900, 300), (1400, 600), (2400, 1000), (600, 200), (3000, 2000)][i]
        if light:
            size = (size[0] // 2, size[1] // 2)
        image = render.page(lines, size=size, font_size=max(24, size[1] // 8)).image
        cases.append(Case(f"rendered.{fmt.lower()} {size}", render.encode(image, fmt), kind, 200))
    chinese = render.page(["发票号码 2026", "合计 42.50 元"], size=(900, 300), cjk=True).image
    cases.append(Case("rendered-cjk.png", render.encode(chinese, "PNG"), "image/png", 200))
    # the other two body forms
    cases.append(Case("multipart png", cases[-1].body, "image/png", 200, form="multipart"))
    cases.append(Case("json png", cases[-2].body, "image/png", 200, form="json"))
    return cases


def _pixels(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def bad_cases() -> list[Case]:
    jpeg = render.encode(render.page(["cut short"], size=(900, 300)).image, "JPEG")
    bomb = render.encode(Image.new("1", (10_000, 10_000), 1), "PNG")
    return [
        Case("truncated jpeg", jpeg[: len(jpeg) // 3], "image/jpeg", 400, "invalid_image"),
        Case("garbage", random.Random(1).randbytes(20_000), "image/png", 400, "invalid_image"),
        Case("empty body", b"", "image/png", 400, "empty_body"),
        Case("broken json", b'{"image": "***"}', "application/json", 400, "bad_request"),
        Case("bomb", bomb, "image/png", 413, "too_many_pixels"),
    ]


def schedule(
    count: int, bad_fraction: float, seed: int, data: Path | None, light: bool = False
) -> list[Case]:
    """`count` requests, the same for every configuration: random order, ~bad_fraction bad."""
    rng = random.Random(seed)
    good, bad = good_cases(data, light), bad_cases()
    return [
        rng.choice(bad) if rng.random() < bad_fraction else rng.choice(good) for _ in range(count)
    ]


@dataclass
class Soak:
    """One configuration's server and what was seen of it."""

    name: str
    server: Server
    idle: dict[str, float]
    samples: list[dict[str, float]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def worker(self) -> psutil.Process:
        return psutil.Process(self.server.worker_pid())

    def memory(self) -> dict[str, float]:
        info = self.worker().memory_full_info()
        return {key: round(getattr(info, key) / _MB, 1) for key in ("rss", "pss", "uss")}

    def round(self, cases: list[Case], done: int, pool: ThreadPoolExecutor) -> None:
        started = time.perf_counter()
        for response, case in zip(
            pool.map(lambda c: c.send(self.server.url), cases), cases, strict=True
        ):
            problem = case.judge(response)
            if problem:
                self.wrong.append(problem)
        self.seconds += time.perf_counter() - started
        self.samples.append({"requests": done, **self.memory()})

    def summary(self) -> dict[str, object]:
        rss = [s["rss"] for s in self.samples]
        tenth, third = max(1, len(rss) // 10), max(1, len(rss) // 3)
        xs = [s["requests"] for s in self.samples]
        return {
            "idle_rss_mb": self.idle["rss"],
            "first_rss_mb": rss[0],
            "last_rss_mb": rss[-1],
            "max_rss_mb": max(rss),
            "drift_tenth": round(_median(rss[-tenth:]) / _median(rss[:tenth]), 3),
            "drift_third": round(_median(rss[-third:]) / _median(rss[:third]), 3),
            "slope_mb_per_1000": round(_slope(xs, rss) * 1000, 2),
            "max_over_idle": round(max(rss) / self.idle["rss"], 3),
            "pss_last_mb": self.samples[-1]["pss"],
            "uss_last_mb": self.samples[-1]["uss"],
            "wrong_answers": len(self.wrong),
            "seconds": round(self.seconds, 1),
        }


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def start(tmp: Path, name: str, env: dict[str, str]) -> Soak:
    # A generous deadline: on a starved machine requests queue for long, and a 504 is not what
    # this measures.
    server = start_server(tmp, LOG_LEVEL="WARNING", **{"REQUEST_TIMEOUT_SECONDS": "600", **env})
    time.sleep(1.0)  # let the load thread's last allocations settle
    soak = Soak(name, server, idle={})
    soak.idle = soak.memory()
    return soak


def run(
    configs: dict[str, dict[str, str]],
    count: int,
    clients: int,
    bad_fraction: float,
    seed: int = 7,
    data: Path | None = DATA,
    light: bool = False,
    progress: bool = False,
) -> dict[str, Soak]:
    """Soak every configuration with the same `count` requests; stop their servers after."""
    cases = schedule(count, bad_fraction, seed, data, light)
    with tempfile.TemporaryDirectory() as tmp:
        soaks = {name: start(Path(tmp), name, env) for name, env in configs.items()}
        try:
            with ThreadPoolExecutor(clients) as pool:
                for first in range(0, count, clients):
                    batch = cases[first : first + clients]
                    for soak in soaks.values():
                        soak.round(batch, first + len(batch), pool)
                    if progress and (first // clients) % 25 == 0:
                        line = "  ".join(f"{s.name} {s.samples[-1]['rss']}" for s in soaks.values())
                        print(f"{first + len(batch)}/{count}  rss MiB: {line}", file=sys.stderr)
        finally:
            for soak in soaks.values():
                soak.server.stop()
    return soaks


def plot(soaks: dict[str, Soak], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 5))
    for soak in soaks.values():
        xs = [s["requests"] for s in soak.samples]
        line = axes.plot(xs, [s["rss"] for s in soak.samples], label=f"{soak.name} RSS")[0]
        axes.axhline(soak.idle["rss"], color=line.get_color(), linestyle=":", linewidth=1)
    axes.set_xlabel("requests answered")
    axes.set_ylabel("worker RSS between requests (MiB); dotted: idle after start-up")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _config(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition("=")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, env


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cli.add_argument("--requests", type=int, default=2000)
    cli.add_argument("--clients", type=int, default=4)
    cli.add_argument("--bad", type=float, default=0.1, help="fraction of bad requests (0.1)")
    cli.add_argument("--seed", type=int, default=7)
    cli.add_argument("--light", action="store_true", help="only images under 1.5 MP")
    cli.add_argument(
        "--rendered-only", action="store_true", help="no evaluation images: rendered ones only"
    )
    cli.add_argument(
        "--config",
        action="append",
        type=_config,
        help="NAME=VAR=VALUE,VAR=VALUE (repeat; default: one 'default=' configuration)",
    )
    cli.add_argument("--plot", type=Path, help="write the RSS plot here (PNG)")
    cli.add_argument("--json", type=Path, help="write summaries and samples here")
    args = cli.parse_args(argv)
    configs = dict(args.config or [("default", {})])
    soaks = run(
        configs,
        args.requests,
        args.clients,
        args.bad,
        args.seed,
        data=None if args.rendered_only else DATA,
        light=args.light,
        progress=True,
    )
    summaries = {name: soak.summary() for name, soak in soaks.items()}
    for name, summary in summaries.items():
        print(name, json.dumps(summary))
        for problem in soaks[name].wrong[:5]:
            print("  wrong:", problem)
    title = f"{args.requests} requests, {args.clients} clients, {args.bad:.0%} bad"
    title += " (light images)" if args.light else ""
    title += " (rendered only)" if args.rendered_only else ""
    if args.plot:
        plot(soaks, args.plot, title)
    if args.json:
        document = {
            "command": "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv),
            "configs": configs,
            "summaries": summaries,
            "idle": {name: soak.idle for name, soak in soaks.items()},
            "samples": {name: soak.samples for name, soak in soaks.items()},
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
