"""What a user sees when the function starts, over real functions-framework processes: the one
"ready" line, quiet readiness polls, a bad setting, and an engine that cannot load."""

from __future__ import annotations

import subprocess

import requests

from function.settings import Settings
from tests import render
from tests.conftest import FUNCTIONS_FRAMEWORK, ROOT, free_port, start_server

IMAGE = render.encode(render.page(["Never read"], size=(600, 120)).image, "PNG")

# Stands in for a cv2 whose system library is missing (libGL on a slim image): the import takes
# a while, so readiness polls and a request arrive while the engine is loading, then fails.
BROKEN_CV2 = """\
import time
time.sleep(5)
raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")
"""


def test_one_ready_line_whatever_the_log_level(tmp_path):
    server = start_server(tmp_path, LOG_LEVEL="ERROR")
    try:
        ready = [line for line in server.log().splitlines() if "Ready:" in line]
    finally:
        server.stop()

    assert len(ready) == 1, server.log()
    (line,) = ready
    assert "OCR engine loaded in " in line
    assert f"open {server.url} in a browser, or POST an image or PDF to it" in line
    assert f"MAX_SIDE={Settings.max_side} MAX_CONCURRENT_REQUESTS=4" in line
    assert "LOG_LEVEL=ERROR" in line


def test_a_bad_setting_prints_its_message_alone_and_exits_non_zero():
    result = subprocess.run(
        [str(FUNCTIONS_FRAMEWORK), "--target=ocr", f"--port={free_port()}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MAX_SIDE": "100"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert result.stderr == (
        "serverless-ocr: MAX_SIDE='100' is invalid: expected an integer from 320 to 8192\n"
    )
    assert result.stdout == ""


def test_an_engine_that_cannot_load_answers_engine_failed_and_the_process_exits(tmp_path):
    (tmp_path / "cv2").mkdir()
    (tmp_path / "cv2" / "__init__.py").write_text(BROKEN_CV2)
    server = start_server(
        tmp_path, wait_for_engine=False, PYTHONPATH=str(tmp_path), LOG_LEVEL="WARNING"
    )
    try:
        loading = requests.get(server.url, timeout=10)
        waited = server.post(IMAGE)  # waits for the load, then hears why it failed
        probe = requests.get(server.url, timeout=10)  # within the grace before the exit
        code = server.process.wait(timeout=30)
    finally:
        server.stop()

    assert loading.status_code == 503 and loading.json()["error"]["code"] == "not_ready"
    for response in (waited, probe):
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "engine_failed"
        assert (
            "ImportError: libGL.so.1" in error["message"] and "system library" in error["message"]
        )
    assert "Retry-After" not in probe.headers  # retrying this instance cannot help
    assert code == 3  # gunicorn: "Worker failed to boot"; the platform replaces the instance
    log = server.log()
    assert "CRITICAL function.engine: The OCR engine failed to load: ImportError" in log
    assert 'raise ImportError("libGL.so.1' in log  # the traceback, for whoever reads the log
    assert "Exiting with code 3" in log
    assert "Ready:" not in log
    # The polls that saw the engine loading are not errors at the default log level.
    assert "error=not_ready" not in log and "GET 503" in log  # only the engine_failed probe
