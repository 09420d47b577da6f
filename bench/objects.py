"""Is the growth in our own objects? The soak's requests in-process, one thread, traced.

Feeds bench/soak.py's schedule (rendered images, ~10 % bad) to `Service` directly, with no
server and no other thread, after a warm-up; every 10 requests prints what tracemalloc traces
(Python allocations), the number of objects the garbage collector tracks, and RSS; at the end,
the lines that allocated most since the warm-up.

    python -m bench.objects --requests 60 --warmup 10
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
import warnings

from bench import soak
from function import memory
from function.errors import OcrError
from function.service import Service
from function.settings import Settings


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m bench.objects", description=__doc__)
    cli.add_argument("--requests", type=int, default=60)
    cli.add_argument("--warmup", type=int, default=10)
    args = cli.parse_args(argv)
    warnings.simplefilter("ignore")
    service = Service(Settings.from_env({}))
    cases = soak.schedule(args.warmup + args.requests, 0.1, 7, None, light=True)

    def one(case: soak.Case) -> None:
        try:
            with service.admission():
                service.ocr(case.body, service.deadline())
        except OcrError:
            pass

    for case in cases[: args.warmup]:
        one(case)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for done, case in enumerate(cases[args.warmup :], 1):
        one(case)
        if done % 10 == 0:
            gc.collect()
            traced, _ = tracemalloc.get_traced_memory()
            print(
                f"{done:4d} requests  traced {traced / 1024:8.1f} KiB  "
                f"gc objects {len(gc.get_objects())}  rss {memory.rss_mb()} MiB"
            )
    for stat in tracemalloc.take_snapshot().compare_to(before, "lineno")[:5]:
        print(stat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
