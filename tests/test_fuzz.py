"""Fuzzing in the suite: a few seconds of bench/fuzz_decode.py (atheris), and property-based
tests (hypothesis) of body parsing and settings. Findings become regression tests here."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from function import http
from function.errors import OcrError, TooLarge
from function.settings import Settings, SettingsError
from tests.conftest import ROOT

MAX_BYTES = 4096
_app = flask.Flask("properties")


def test_a_short_fuzz_run_of_decode_finds_nothing():
    run = subprocess.run(
        [sys.executable, "-m", "bench.fuzz_decode", "-max_total_time=5", "-rss_limit_mb=1024"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr and "ERROR" not in run.stderr, run.stderr[-3000:]


def parse(body: bytes, content_type: str) -> bytes:
    with _app.test_request_context("/", method="POST", data=body, content_type=content_type):
        return http.read_image_bytes(flask.request, MAX_BYTES)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2 * MAX_BYTES), kind=st.sampled_from([
    "application/json", "multipart/form-data; boundary=x", "multipart/form-data",
    "image/png", "application/octet-stream", "text/plain", "application/x-www-form-urlencoded",
]))  # fmt: skip
def test_any_body_is_image_bytes_or_a_client_error(body, kind):
    try:
        data = parse(body, kind)
    except OcrError as error:
        assert 400 <= error.status < 500 and error.code and error.message
        return
    assert 0 < len(data) <= MAX_BYTES


@settings(max_examples=100, deadline=None)
@given(
    image=st.binary(min_size=1, max_size=MAX_BYTES), data_url=st.booleans(), wrap=st.integers(0, 80)
)
def test_json_base64_round_trips_whatever_the_whitespace(image, data_url, wrap):
    encoded = base64.b64encode(image).decode()
    if wrap:  # line-wrapped base64, as some encoders write it
        encoded = "\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    if data_url:
        encoded = "data:image/png;base64," + encoded
    body = json.dumps({"image": encoded}).encode()
    try:
        assert parse(body, "application/json") == image
    except TooLarge:
        assert len(body) > MAX_BYTES


# File names as clients put them in a header: a raw CR or LF would break the header itself
# (found by this test: Werkzeug's test client writes them unescaped, and the part then reads as
# a text field, answered 400).
FILENAMES = st.text(st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters='"\\'))


@settings(max_examples=100, deadline=None)
@given(image=st.binary(min_size=1, max_size=MAX_BYTES), filename=FILENAMES)
def test_multipart_file_round_trips(image, filename):
    with _app.test_request_context(
        "/", method="POST", data={"file": (io.BytesIO(image), filename or "f")}
    ):
        try:
            assert http.read_image_bytes(flask.request, MAX_BYTES) == image
        except TooLarge:
            assert len(image) > MAX_BYTES - 1024


INTEGERS = {
    "MAX_SIDE": (320, 8192),
    "MAX_IMAGE_BYTES": (1024, 1 << 31),
    "MAX_PIXELS": (10_000, 178_956_970),
    "MAX_CONCURRENT_REQUESTS": (1, 1000),
    "REQUEST_TIMEOUT_SECONDS": (1, 3600),
    "MEMORY_ADMISSION_MARGIN_MB": (0, 1 << 20),
    "OCR_THREADS": (1, 256),
}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(INTEGERS)), value=st.integers(-(1 << 40), 1 << 40))
def test_integer_settings_accept_their_range_and_name_the_variable_otherwise(name, value):
    low, high = INTEGERS[name]
    env = {name: f" {value} "}
    if low <= value <= high:
        attribute = name.lower()
        assert getattr(Settings.from_env(env), attribute) == value
    else:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env(env)


@settings(max_examples=150, deadline=None)
@given(env=st.dictionaries(
    st.sampled_from([*INTEGERS, "ENABLE_GC_AFTER_REQUEST", "MEMORY_OPTIMIZATION", "USE_ANGLE_CLS",
                     "AUTO_ROTATE", "MEMORY_ATTENTION_MB", "MEMORY_WARNING_MB", "LOG_LEVEL",
                     "LOG_FORMAT", "OUTPUT_PREFIX", "OUTPUT_BUCKET", "WORKERS",
                     "OCR_PROCESS_POOL_SIZE"]),
    st.text(max_size=12),
))  # fmt: skip
def test_any_environment_gives_settings_or_one_clear_error(env):
    try:
        loaded = Settings.from_env(env)
    except SettingsError as error:
        assert any(name in str(error) for name in env), error
        return
    assert loaded.memory_attention_mb < loaded.memory_warning_mb
    assert not loaded.output_prefix.startswith("/")
    assert loaded == Settings.from_env(env)  # read twice, the same settings
