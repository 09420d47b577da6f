"""CPU per model run, one thread: each model as the wheel ships it and as fold.py leaves it.

    python -m bench.model_speed [--rounds 30] [--cpus 1]

Times the recognisers on one 48x320 crop and the detectors on one 640x640 page (rendered text),
every model in turn within each round, so a busy machine slows them alike; reports the median
CPU ms (this process's CPU time: ONNX Runtime runs on one intra-op thread, as the engine does
on one CPU) and writes bench/results/model_speed.json. Needs both wheels (the development
requirements): the originals are read from them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench import harness
from function.models import fold
from tests import render

SHAPES = {"det": (640, 640), "rec": (48, 320)}  # height, width


def session(path: Path) -> ort.InferenceSession:
    """The engine's session options (function/engine.py), one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tensor(height: int, width: int) -> np.ndarray:
    lines = ["Invoice 2026: total 42.50", "Folded and unfolded models", "side by side"]
    image = render.page(lines[: max(1, height // 48)], size=(width, height), origin=(4, 4))
    bgr = np.asarray(image.image)[:, :, ::-1].astype(np.float32)
    return (bgr.transpose(2, 0, 1)[None] * (2 / 255) - 1.0).copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/model_speed.json"
    )
    args = parser.parse_args()
    harness.pin_cpus(args.cpus)
    models = {}
    for name in fold.MODELS:
        kind = "det" if "det" in name else "rec"
        version = "v6" if name.startswith("v6") else "v4"
        models[f"{version} {kind} as shipped"] = (kind, session(fold.original(name)))
        models[f"{version} {kind} folded"] = (kind, session(fold.HERE / name))
    inputs = {kind: tensor(*shape) for kind, shape in SHAPES.items()}
    times: dict[str, list[float]] = {label: [] for label in models}
    for round_ in range(args.rounds + 2):
        for label, (kind, model) in models.items():
            feed = {model.get_inputs()[0].name: inputs[kind]}
            started = time.process_time()
            model.run(None, feed)
            if round_ >= 2:  # the first runs set up the arena and kernels
                times[label].append((time.process_time() - started) * 1000)
    result = {label: round(float(np.median(t)), 1) for label, t in times.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": f"python -m bench.model_speed --rounds {args.rounds} --cpus {args.cpus}",
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "median_cpu_ms": result,
                "cpu_ms": times,
            },
            indent=1,
        )
    )
    print("| model | input | median CPU ms |\n|---|---|---|")
    for label, ms in result.items():
        height, width = SHAPES[models[label][0]]
        print(f"| {label} | {height}x{width} | {ms} |")


if __name__ == "__main__":
    main()
