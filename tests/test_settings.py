"""Settings: read once, validated up front, obsolete knobs warned about with the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from function.settings import Settings, SettingsError, available_cpus
from tests.conftest import ROOT, start_server


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.max_side == 1600
    assert settings.max_image_bytes == 32 * 1024 * 1024
    assert settings.max_concurrent_requests == 4
    assert settings.enable_gc_after_request is True
    assert settings.memory_optimization is True
    assert settings.use_angle_cls is False
    assert settings.ocr_model == "v4"
    assert settings.auto_rotate is True
    assert (settings.memory_attention_mb, settings.memory_warning_mb) == (1024, 2048)
    assert settings.log_level == "WARNING"
    assert settings.ocr_threads == available_cpus()
    assert settings.warnings == ()
    assert (settings.max_pages, settings.pdf_dpi, settings.pdf_text_layer) == (500, 300, "auto")


def test_values_are_parsed():
    settings = Settings.from_env(
        {
            "MAX_SIDE": "1280",
            "ENABLE_GC_AFTER_REQUEST": "False",
            "MEMORY_OPTIMIZATION": "no",
            "USE_ANGLE_CLS": "on",
            "AUTO_ROTATE": "false",
            "LOG_LEVEL": "info",
            "OCR_THREADS": "3",
            "OUTPUT_PREFIX": "text",
            "MAX_PIXELS": "20_000_000",
            "MAX_PAGES": "40",
            "PDF_DPI": "200",
            "PDF_TEXT_LAYER": "OCR",
            "OCR_MODEL": "V6",
        }
    )
    assert (settings.max_pages, settings.pdf_dpi, settings.pdf_text_layer) == (40, 200, "ocr")
    assert settings.max_side == 1280
    assert settings.enable_gc_after_request is False
    assert settings.memory_optimization is False
    assert settings.use_angle_cls is True
    assert settings.auto_rotate is False
    assert settings.log_level == "INFO"
    assert settings.ocr_threads == 3
    assert settings.output_prefix == "text/"
    assert settings.max_pixels == 20_000_000
    assert settings.ocr_model == "v6"


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("MAX_SIDE", "big", "an integer from 320 to 8192"),
        ("MAX_SIDE", "100", "an integer from 320 to 8192"),
        ("MAX_CONCURRENT_REQUESTS", "0", "an integer from 1"),
        ("MAX_PIXELS", "300000000", "an integer from 10000 to 178956970"),
        ("ENABLE_GC_AFTER_REQUEST", "maybe", "true or false"),
        ("MEMORY_OPTIMIZATION", "2", "true or false"),
        ("AUTO_ROTATE", "sideways", "true or false"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING"),
        ("MAX_PAGES", "0", "an integer from 1 to 100000"),
        ("PDF_DPI", "10", "an integer from 36 to 1200"),
        ("PDF_TEXT_LAYER", "never", "one of auto, ocr, only"),
        ("LOG_FORMAT", "xml", "one of auto, json, text"),
        ("OCR_MODEL", "v5", "one of v4, v6"),
        ("OUTPUT_PREFIX", "/abs", "not starting with '/'"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(name, value, accepts):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert f"{name}={value!r}" in str(raised.value)
    assert accepts in str(raised.value)


def test_thresholds_must_be_ordered():
    with pytest.raises(SettingsError, match="MEMORY_ATTENTION_MB=3000 must be below"):
        Settings.from_env({"MEMORY_ATTENTION_MB": "3000"})


def test_obsolete_pool_and_extra_workers_are_warned_about_with_the_reason():
    settings = Settings.from_env({"OCR_PROCESS_POOL_SIZE": "2", "WORKERS": "4"})
    pool, workers = settings.warnings
    assert "OCR_PROCESS_POOL_SIZE=2 is ignored" in pool and "no process pool" in pool
    assert "WORKERS=4" in workers and "own OCR engine" in workers
    assert Settings.from_env({"WORKERS": "1"}).warnings == ()


def test_start_up_logs_the_warnings(tmp_path):
    server = start_server(tmp_path, OCR_PROCESS_POOL_SIZE="2", LOG_LEVEL="WARNING")
    try:
        assert "OCR_PROCESS_POOL_SIZE=2 is ignored" in server.log()
    finally:
        server.stop()


def test_threads_follow_the_cpus_this_process_may_use_not_the_hosts():
    pinned = (
        "import os; os.sched_setaffinity(0, {0}); "
        "from function.settings import Settings; print(Settings.from_env({}).ocr_threads)"
    )
    result = subprocess.run(
        [sys.executable, "-c", pinned], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "1", result.stderr
    assert Settings.from_env({"OCR_THREADS": "3"}).ocr_threads == 3
