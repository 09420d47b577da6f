"""The one OCR engine of this process: its models, loaded once in the process that serves.

The engine is rapidocr-onnxruntime's PP-OCRv4 detector and recogniser (the ONNX files in its
wheel, folded into fewer ops by `function.models.fold`: the same results for ~20 % less CPU),
or with OCR_MODEL=v6 rapidocr 3.10's PP-OCRv6 small pair (more languages, more CPU),
run by ONNX Runtime sessions we configure ourselves, so that memory is ours to bound:
an arena shrunk after every run (but between a page's detector strips) and no memory
pattern (nothing of one image is kept for the next), no spinning threads (they burn CPU time a
1-vCPU instance pays for), and no per-line angle classifier unless USE_ANGLE_CLS asks for it.
The text-direction classifier that decides a page's orientation (AUTO_ROTATE, on by default) is
a session of its own: 0.6 MB of model, run once per page on a few pieces of lines.
The steps that use the models live in `orientation`, `detect` and `recognise`.

functions-framework imports the function in gunicorn's master process and then forks the worker
that serves. ONNX Runtime's thread pool does not survive a fork (an engine created before the
fork runs markedly slower in the child), so the models are loaded in a background thread as soon
as the worker is forked; where nothing forks (the Flask debug server) the first readiness probe
or request starts it. Requests that arrive while it loads wait for it. One image at a time is
inside the engine (`Engine.session()`); the next one can be decoded meanwhile.

A load that fails is recorded (`failure`) and never retried in this process: requests get
503 `engine_failed`, and the background load reports it to `on_failure`, which in the function
ends the process (see `function.startup`). A load that succeeds is reported to `on_loaded`, which
in the function announces it and warms the steps up (`function.startup`: the engine, the lowest
floor, does not know the steps that use it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import allocator
from .deadline import Deadline
from .errors import EngineFailed
from .settings import Settings

log = logging.getLogger(__name__)
MODELS = Path(__file__).parent / "models"  # rapidocr's, folded (see function/models/fold.py)
# OCR_MODEL -> (detector, recogniser) in MODELS
MODEL_FILES = {"v4": ("det.onnx", "rec.onnx"), "v6": ("v6_det.onnx", "v6_rec.onnx")}
# rapidocr's text-direction classifier (0 or 180 degrees), in its wheel: too small to fold
ORIENTER = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"


@dataclass(frozen=True)
class Model:
    """One ONNX model: called with its input tensor, returns its first output.

    After a run its arena is shrunk (its memory handed back), unless the caller says
    `keep_arena` because a run of the same shape follows: the detector's strips of one page,
    which would otherwise page-fault the same tens of MB in again for every strip (a fifth of the
    detector's CPU time was the kernel's).
    """

    session: Any  # onnxruntime.InferenceSession
    run_options: Any  # onnxruntime.RunOptions: shrinks the arena after the run
    keep_options: Any  # onnxruntime.RunOptions: leaves it

    def __call__(self, tensor: Any, *, keep_arena: bool = False) -> Any:
        (name,) = (i.name for i in self.session.get_inputs())
        options = self.keep_options if keep_arena else self.run_options
        return self.session.run(None, {name: tensor}, options)[0]


@dataclass(frozen=True)
class Models:
    """What the pipeline's steps run: the two models and the recogniser's alphabet."""

    detector: Model | None
    recogniser: Model | None
    alphabet: tuple[str, ...]  # CTC class -> character; class 0 is the blank
    classifier: Any = None  # rapidocr's TextClassifier, only with USE_ANGLE_CLS
    orienter: Model | None = None  # the text-direction classifier, for AUTO_ROTATE
    reference: Any = None  # rapidocr's own RapidOCR, only with MEMORY_OPTIMIZATION=false


class Engine:
    """Lazily loaded models behind a lock."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._models: Models | None = None
        self.load_seconds: float | None = None
        self.failure: str | None = None  # why the load failed ("ImportError: ..."), if it did
        self._on_loaded: Callable[[Engine], None] = lambda engine: None
        self._on_failure: Callable[[Engine], None] = lambda engine: None

    @property
    def loaded(self) -> bool:
        return self._models is not None

    def preload(
        self,
        on_loaded: Callable[[Engine], None] | None = None,
        on_failure: Callable[[Engine], None] | None = None,
    ) -> None:
        """Start loading in the process that will serve, in the background.

        That is every process forked from this one (gunicorn's worker); where processes cannot
        fork (Windows, where functions-framework serves in-process), this one, at once. The
        background load calls `on_loaded` or `on_failure` when it ends.
        """
        self._on_loaded = on_loaded or self._on_loaded
        self._on_failure = on_failure or self._on_failure
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.start_loading)
        else:
            self.start_loading()

    def start_loading(self) -> None:
        """Load in a background thread, unless it is loaded, loading, or failed already."""
        if not self.loaded and self.failure is None and not self._loading.locked():
            threading.Thread(
                target=self._load_and_report, name="ocr-engine-load", daemon=True
            ).start()

    def _load_and_report(self) -> None:
        try:
            self._ensure_loaded()
        except EngineFailed:
            self._on_failure(self)
        else:
            self._on_loaded(self)

    def _ensure_loaded(self) -> Models:
        with self._loading:
            if self._models is not None:
                return self._models
            if self.failure is not None:
                raise EngineFailed.because(self.failure)
            started = time.perf_counter()
            try:
                models = load_models(self._settings)
            except Exception as exc:  # ImportError of a system library, MemoryError, bad model
                self.failure = f"{type(exc).__name__}: {exc}"
                log.critical("The OCR engine failed to load: %s", self.failure, exc_info=True)
                raise EngineFailed.because(self.failure) from exc
            self.load_seconds = round(time.perf_counter() - started, 3)
            self._models = models  # last: `loaded` reads it
            log.info("OCR engine loaded in %.3f s", self.load_seconds)
            return models

    @contextmanager
    def session(self, deadline: Deadline | None = None) -> Iterator[Models]:
        """The models, for one image at a time: waits for the load and for the image before.

        With a deadline, a request waiting for the engine gives up at it (504) instead of
        queueing behind a long image.
        """
        models = self._ensure_loaded()
        with deadline.hold(self._lock) if deadline is not None else self._lock:
            yield models


def load_models(settings: Settings) -> Models:
    import cv2
    import onnxruntime as ort

    cv2.setNumThreads(settings.ocr_threads)
    if not settings.memory_optimization:  # the baseline: rapidocr and glibc as they come
        return Models(detector=None, recogniser=None, alphabet=(), reference=_reference(settings))
    allocator.configure()  # before the sessions allocate: see allocator.py
    options = ort.SessionOptions()
    # Tensors come from ONNX Runtime's arena, which is shrunk back after every run (but between
    # a page's detector strips): memory is reused within a run (no page-fault churn) and not kept
    # between images (an arena left to grow keeps the largest image's tensors forever).
    # Measured against no arena: lower peak, less CPU.
    options.enable_cpu_mem_arena = True
    run_options = ort.RunOptions()
    run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    options.enable_mem_pattern = False  # it pre-plans (and holds) a block per input shape
    options.intra_op_num_threads = settings.ocr_threads  # ORT ignores values above cpu_count
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle intra-op threads spin for work by default: CPU time billed for nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]

    def model(path: Path) -> Model:
        session = ort.InferenceSession(str(path), options, providers=providers)
        return Model(session, run_options, ort.RunOptions())

    detector_file, recogniser_file = MODEL_FILES[settings.ocr_model]
    recogniser = model(MODELS / recogniser_file)
    metadata = recogniser.session.get_modelmeta().custom_metadata_map
    characters = metadata["character"].splitlines()
    return Models(
        detector=model(MODELS / detector_file),
        recogniser=recogniser,
        # The model's classes: the CTC blank, its character list, and a space at the end.
        alphabet=("", *map(_character, characters), " "),
        classifier=_classifier(settings) if settings.use_angle_cls else None,
        orienter=model(_in_wheel(ORIENTER)) if settings.auto_rotate else None,
    )


def _in_wheel(name: str) -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / name


def _character(char: str) -> str:
    """A class's character as the text should have it: full-width Latin as ASCII, and NFC.

    The models have both forms of each Latin letter and digit (U+FF10-FF5A) as classes and pick
    either, so a receipt came back as `1,1４2.４0`; a user (and a search) wants `1,142.40`. CJK
    punctuation keeps its form. Every accented letter is a class of its own (`ő`, not `o` and a
    mark), but a few classes are not in NFC (the Ångström sign, two CJK compatibility
    ideographs): as their canonical characters they compare equal to what a user types.
    """
    if "０" <= char <= "９" or "Ａ" <= char <= "Ｚ" or "ａ" <= char <= "ｚ":
        return chr(ord(char) - 0xFEE0)
    return unicodedata.normalize("NFC", char)


def _classifier(settings: Settings) -> Any:
    """rapidocr's text-angle classifier (lines upside down -> upright), on request only.

    Off by default: it squeezes each line into 192x48 px, and on long document lines it often
    calls upright text upside down; the flipped line then reads as nothing.
    """
    from rapidocr_onnxruntime.ch_ppocr_cls import TextClassifier
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    config = update_model_path(read_yaml(DEFAULT_CFG_PATH))["Cls"]
    config.update(intra_op_num_threads=settings.ocr_threads, inter_op_num_threads=1)
    return TextClassifier(config)


def _reference(settings: Settings) -> Any:
    """rapidocr as it comes (MEMORY_OPTIMIZATION=false): the benchmarks' baseline, not for use.

    Its own sizing enlarges small and thin images (a 200x60 word costs ~580 MB).
    """
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(
        use_cls=settings.use_angle_cls,
        intra_op_num_threads=settings.ocr_threads,
        inter_op_num_threads=1,
    )
