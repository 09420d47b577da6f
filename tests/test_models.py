"""The folded models in function/models: made from rapidocr's by fold.py, and computing the same.

The originals are read from the pinned wheels: rapidocr-onnxruntime (v4) and rapidocr (v6, a
development requirement only).
"""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from function import recognise
from function.models import fold
from tests import render


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def both(name: str) -> tuple[ort.InferenceSession, ort.InferenceSession]:
    """rapidocr's model and ours."""
    return session(fold.original(name)), session(fold.HERE / name)


def run(model: ort.InferenceSession, tensor: np.ndarray) -> np.ndarray:
    (name,) = (i.name for i in model.get_inputs())
    return model.run(None, {name: tensor})[0]


def blob(image: np.ndarray) -> np.ndarray:
    """A BGR image as a model input: NCHW, scaled to [-1, 1] as both models are fed."""
    return (image.astype(np.float32).transpose(2, 0, 1)[None] * (2 / 255) - 1.0).copy()


@pytest.mark.parametrize("name", sorted(fold.MODELS))
def test_the_files_are_what_fold_makes_from_the_pinned_wheel(name):
    folded = fold.fold(onnx.load(fold.original(name)))

    assert (fold.HERE / name).read_bytes() == folded.SerializeToString(), (
        f"function/models/{name} is stale: run `python -m function.models.fold`"
    )


@pytest.mark.parametrize("name", ["det.onnx", "rec.onnx"])
def test_the_rewrites_remove_the_ops_they_target(name):
    before = fold.op_counts(onnx.load(fold.original(name)))
    after = fold.op_counts(onnx.load(fold.HERE / name))

    # hardswish spelt out (Add, Clip, Mul, Div) is gone, and most scale-and-shift pairs with it
    assert before["Clip"] > 20 and after["Clip"] == 0
    assert after["Mul"] + after["Add"] < (before["Mul"] + before["Add"]) * 0.6
    assert after["Conv"] == before["Conv"]  # folded into, not removed


@pytest.mark.parametrize("name", ["rec.onnx", "v6_rec.onnx"])
def test_the_folded_recogniser_reads_what_the_original_reads(name):
    original, folded = both(name)
    image = render.page(["Folded 2026: 42.50 total"], size=(700, 60), origin=(10, 4))
    line = np.ascontiguousarray(np.asarray(image.image)[:, :, ::-1])
    resized = recognise.crop(line, np.float32([[0, 0], [699, 0], [699, 59], [0, 59]]))
    width = int(np.ceil(recognise.HEIGHT * resized.shape[1] / resized.shape[0]))
    tensor = blob(cv2.resize(resized, (width, recognise.HEIGHT)))

    expected, got = run(original, tensor), run(folded, tensor)

    assert got.shape == expected.shape
    assert np.array_equal(got.argmax(axis=-1), expected.argmax(axis=-1))
    assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("name", ["det.onnx", "v6_det.onnx"])
def test_the_folded_detector_finds_what_the_original_finds(name):
    original, folded = both(name)
    image = render.page(["Two lines of text", "to be found 2026"], size=(640, 224))
    tensor = blob(np.ascontiguousarray(np.asarray(image.image)[:, :, ::-1]))

    expected, got = run(original, tensor), run(folded, tensor)

    assert got.shape == expected.shape == (1, 1, 224, 640)
    assert np.abs(got - expected).max() < 1e-3
    text = 0.3  # the binarisation threshold detect.py gives rapidocr's post-processing
    assert ((got > text) == (expected > text)).mean() > 0.999
