"""Every setting comes from an environment variable, is read once, and is validated up front.

A bad value stops start-up with a message naming the variable and what it accepts, so a typo in a
deployment fails loudly at deploy time instead of silently at 3 a.m. Variables that meant something
to the old pooled service but mean nothing here are reported as warnings, never ignored silently.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from . import cgroups

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
TEXT_LAYER_MODES = ("auto", "ocr", "only")
# The detector and recogniser pair (function/models): PP-OCRv4 reads Chinese and English;
# PP-OCRv6 also ~45 Latin-script languages and Japanese, for ~1.5x the CPU (docs/languages.md).
OCR_MODELS = ("v4", "v6")


class SettingsError(ValueError):
    """A variable has a value the function cannot run with."""


@dataclass(frozen=True)
class Settings:
    """The settings in effect for this process. Build it with `Settings.from_env()`."""

    max_side: int = 1600
    max_image_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_concurrent_requests: int = 4
    enable_gc_after_request: bool = True
    memory_optimization: bool = True
    use_angle_cls: bool = False
    ocr_model: str = "v4"
    auto_rotate: bool = True
    memory_attention_mb: int = 1024
    memory_warning_mb: int = 2048
    ocr_threads: int = 1
    request_timeout_seconds: int = 60
    memory_admission_margin_mb: int = 128
    log_level: str = "WARNING"
    log_format: str = "auto"
    output_bucket: str = ""
    output_prefix: str = "ocr-results/"
    max_pages: int = 500
    pdf_dpi: int = 300
    pdf_text_layer: str = "auto"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise SettingsError naming the first bad one."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        settings = cls(
            max_side=reader.integer("MAX_SIDE", cls.max_side, 320, 8192),
            max_image_bytes=reader.integer("MAX_IMAGE_BYTES", cls.max_image_bytes, 1024, 1 << 31),
            # Pillow refuses more than 2 x its MAX_IMAGE_PIXELS (178,956,970) whatever we allow.
            max_pixels=reader.integer("MAX_PIXELS", cls.max_pixels, 10_000, 178_956_970),
            max_concurrent_requests=reader.integer(
                "MAX_CONCURRENT_REQUESTS", cls.max_concurrent_requests, 1, 1000
            ),
            enable_gc_after_request=reader.boolean(
                "ENABLE_GC_AFTER_REQUEST", cls.enable_gc_after_request
            ),
            memory_optimization=reader.boolean("MEMORY_OPTIMIZATION", cls.memory_optimization),
            use_angle_cls=reader.boolean("USE_ANGLE_CLS", cls.use_angle_cls),
            ocr_model=reader.choice("OCR_MODEL", cls.ocr_model, OCR_MODELS),
            auto_rotate=reader.boolean("AUTO_ROTATE", cls.auto_rotate),
            memory_attention_mb=reader.integer(
                "MEMORY_ATTENTION_MB", cls.memory_attention_mb, 1, 1 << 20
            ),
            memory_warning_mb=reader.integer(
                "MEMORY_WARNING_MB", cls.memory_warning_mb, 1, 1 << 20
            ),
            ocr_threads=reader.integer("OCR_THREADS", available_cpus(), 1, 256),
            request_timeout_seconds=reader.integer(
                "REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds, 1, 3600
            ),
            memory_admission_margin_mb=reader.integer(
                "MEMORY_ADMISSION_MARGIN_MB", cls.memory_admission_margin_mb, 0, 1 << 20
            ),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, LOG_LEVELS),
            log_format=reader.choice("LOG_FORMAT", cls.log_format, LOG_FORMATS),
            output_bucket=env.get("OUTPUT_BUCKET", "").strip(),
            output_prefix=reader.prefix("OUTPUT_PREFIX", cls.output_prefix),
            max_pages=reader.integer("MAX_PAGES", cls.max_pages, 1, 100_000),
            pdf_dpi=reader.integer("PDF_DPI", cls.pdf_dpi, 36, 1200),
            pdf_text_layer=reader.choice("PDF_TEXT_LAYER", cls.pdf_text_layer, TEXT_LAYER_MODES),
            warnings=tuple(_obsolete_variable_warnings(env)),
        )
        if settings.memory_attention_mb >= settings.memory_warning_mb:
            raise SettingsError(
                f"MEMORY_ATTENTION_MB={settings.memory_attention_mb} must be below "
                f"MEMORY_WARNING_MB={settings.memory_warning_mb}"
            )
        return settings

    def public(self) -> dict[str, object]:
        """The settings as shown to clients by GET (nothing here is secret)."""
        shown = asdict(self)
        shown.pop("warnings")
        return shown


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask and its cgroup CPU quota.

    os.cpu_count() reports the host's cores; ONNX Runtime sizing its thread pool from it on a
    2-vCPU instance of a 64-core host means 64 threads fighting over 2 CPUs.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity API
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    """The tightest CPU quota (in CPUs) of this process's cgroup and its ancestors."""
    found = cgroups.ancestry("cpu")
    if found is None:
        return None
    directories, version = found
    quotas = []
    for directory in directories:
        try:
            if version == 2:  # "max 100000" or "200000 100000"
                quota, period = (directory / "cpu.max").read_text().split()
                if quota != "max":
                    quotas.append(int(quota) / int(period))
            else:
                quota = int((directory / "cpu.cfs_quota_us").read_text())
                period = int((directory / "cpu.cfs_period_us").read_text())
                if quota > 0:
                    quotas.append(quota / period)
        except (OSError, ValueError):
            continue
    return min(quotas) if quotas else None


def _obsolete_variable_warnings(env: Mapping[str, str]) -> list[str]:
    warnings = []
    if "OCR_PROCESS_POOL_SIZE" in env:
        warnings.append(
            f"OCR_PROCESS_POOL_SIZE={env['OCR_PROCESS_POOL_SIZE']} is ignored: this function has "
            "no process pool. One OCR engine per process serves every request, one at a time; "
            "each pooled process held its own engine, which is what exhausted memory."
        )
    workers = env.get("WORKERS", "1").strip()
    if workers not in ("", "1"):
        warnings.append(
            f"WORKERS={workers}: functions-framework will start {workers} worker processes, each "
            "loading its own OCR engine, which multiplies memory like the old pool did. "
            "Use WORKERS=1 and scale with instances; MAX_CONCURRENT_REQUESTS caps each instance."
        )
    return warnings


class _Reader:
    """Parses one variable at a time, raising SettingsError that names it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _get(self, name: str, default: T, parse: Callable[[str], T], accepts: str) -> T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is invalid: expected {accepts}") from None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw.replace("_", ""))
            if not low <= value <= high:
                raise ValueError
            return value

        return self._get(name, default, parse, f"an integer from {low} to {high}")

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError

        return self._get(name, default, parse, "true or false (also 1/0, yes/no, on/off)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(raw: str) -> str:
            for choice in choices:
                if raw.lower() == choice.lower():
                    return choice
            raise ValueError

        return self._get(name, default, parse, "one of " + ", ".join(choices))

    def prefix(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            if raw.startswith("/"):
                raise ValueError
            return raw if raw.endswith("/") else raw + "/"

        return self._get(name, default, parse, "an object-name prefix not starting with '/'")
