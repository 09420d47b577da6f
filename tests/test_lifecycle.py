"""An instance's life on the platform, over real HTTP: requests past REQUEST_TIMEOUT_SECONDS,
SIGTERM with HTTP requests and storage events in flight, and a bounded soak."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests
from PIL import Image

from bench import soak
from tests import render
from tests.conftest import start_server
from tests.emulator import finalized, post
from tests.test_errors import assert_error, assert_still_serves
from tests.test_local_runner import start_runner
from tests.test_storage import BUCKET, emulator, result_blob, storage_function  # noqa: F401

# Cloud Run sends SIGKILL this long after SIGTERM.
PLATFORM_GRACE_SECONDS = 10
# A page the engine reads in about a second on 2 busy cores: eight of them queued take longer
# than the platform's grace, one alone much less.
PAGE = render.encode(
    render.page([f"Line number {i} of a page" for i in range(8)], size=(1200, 900)).image, "PNG"
)


def test_requests_past_their_deadline_give_up_the_engine_with_504(servers):
    server = servers(REQUEST_TIMEOUT_SECONDS="1", MAX_CONCURRENT_REQUESTS="4", THREADS="8")
    photo = render.noisy_photo()

    def timed(_: int) -> tuple[requests.Response, float]:
        started = time.monotonic()
        response = server.post(photo, "image/jpeg")
        return response, time.monotonic() - started

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(timed, range(4)))

    statuses = sorted(response.status_code for response, _ in answers)
    assert set(statuses) <= {200, 504}, statuses
    assert 504 in statuses, statuses  # only one is in the engine; the others wait past 1 s
    for response, seconds in answers:
        if response.status_code == 504:
            error = assert_error(response, 504, "timeout")
            assert "REQUEST_TIMEOUT_SECONDS (1 s)" in error["message"]
            # They gave up waiting at the deadline, not after the engine ran their image.
            assert seconds < 1 + 5, seconds
    assert_still_serves(server)


def test_sigterm_answers_every_request_in_flight_before_the_platform_kills(tmp_path):
    server = start_server(tmp_path, MAX_CONCURRENT_REQUESTS="8", THREADS="8")
    answers: list[tuple[requests.Response | Exception, float]] = []

    def send(_: int) -> None:
        try:
            response: requests.Response | Exception = server.post(PAGE, "image/png")
        except requests.RequestException as exc:
            response = exc
        answers.append((response, time.monotonic()))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # all eight admitted: one in the engine, the rest queued behind it
    terminated = time.monotonic()
    server.process.send_signal(signal.SIGTERM)  # what the platform sends to the container
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 8
    seen = [(getattr(r, "status_code", r), round(a - terminated, 1)) for r, a in answers]
    late = []
    for response, answered in answers:
        assert not isinstance(response, Exception), seen  # no reset, no dropped request
        if response.status_code != 200:
            assert_error(response, 503, "shutting_down")
            assert response.headers["Retry-After"] == "1"
        if answered - terminated >= PLATFORM_GRACE_SECONDS:
            late.append(response.status_code)
    # Everything waiting was answered in time. An engine call cannot be interrupted, so the one
    # request inside the engine when the budget ran out may finish later, with its result.
    assert late in ([], [200]), seen
    server.process.wait(timeout=PLATFORM_GRACE_SECONDS + 5)
    assert "SIGTERM: answering requests in flight" in server.log()


def test_sigterm_during_storage_events_writes_whole_results_or_none(emulator, tmp_path_factory):  # noqa: F811
    function = storage_function(emulator, tmp_path_factory, MAX_CONCURRENT_REQUESTS="8")
    names = [f"scans/shutdown-{i}.png" for i in range(6)]
    events = [finalized(emulator.upload(BUCKET, name, PAGE, "image/png")) for name in names]
    with ThreadPoolExecutor(len(events)) as pool:
        futures = [pool.submit(post, function.url, event) for event in events]
        time.sleep(1.0)
        function.process.send_signal(signal.SIGTERM)
        answers = [future.result(timeout=60) for future in futures]
    function.process.wait(timeout=PLATFORM_GRACE_SECONDS + 5)

    retried = []
    for name, event, response in zip(names, events, answers, strict=True):
        blob = result_blob(emulator, f"ocr-results/{name}.json")
        if response.status_code < 300:  # done: a whole result is there
            assert blob is not None
            assert "Line number" in json.loads(blob.download_as_bytes())["text"]
        else:  # the platform retries it; nothing was written meanwhile
            assert response.status_code == 500
            assert blob is None
            retried.append((name, event))

    # The platform redelivers the events that were not acknowledged, to a new instance.
    replacement = storage_function(emulator, tmp_path_factory)
    try:
        for name, event in retried:
            assert post(replacement.url, event).status_code == 200
            assert result_blob(emulator, f"ocr-results/{name}.json") is not None
    finally:
        replacement.stop()


def test_a_short_soak_keeps_memory_bounded_and_every_answer_right():
    """A bounded version of bench/soak.py: 40 varied requests (~10 % bad), 4 clients at once.

    Measured bounds are in docs/RELIABILITY.md; this one is generous so it cannot flake, but a
    leak of a copy of each image or a result (megabytes per request) would still fail it.
    """
    runs = soak.run({"soak": {"MALLOC_ARENA_MAX": "2"}}, 40, 4, 0.1, data=None, light=True)
    run = runs["soak"]
    assert run.wrong == []
    assert len(run.samples) == 10
    summary = run.summary()
    assert summary["max_over_idle"] < 2.0, summary
    assert summary["last_rss_mb"] < run.samples[0]["rss"] + 100, summary


def test_near_its_memory_limit_the_instance_sheds_requests_before_work(tmp_path, monkeypatch):
    """Under the local runner (RLIMIT_AS 3 GiB): while a 49 MP PNG is in flight the worker's
    address space passes limit - margin, and a request arriving then is refused at once."""
    # Measured: the idle worker holds ~635 MiB of address space, ~870 MiB while it decodes a
    # 49 MP PNG (several seconds); a 12 MP photo reaches ~730 MiB only briefly.
    limit_mb, threshold_mb = 3072, 750
    monkeypatch.setenv("MEMORY_ADMISSION_MARGIN_MB", str(limit_mb - threshold_mb))
    runner = start_runner(tmp_path, "--memory", f"{limit_mb}MiB", "--cpus", "2")
    try:
        runner.wait_for("instance 1 ready")
        master = next(
            p
            for p in psutil.Process(runner.process.pid).children()
            if "functions" in p.cmdline()[2]
        )
        worker = master.children()[0]
        big_png = render.encode(Image.new("RGB", (7000, 7000), "white"), "PNG")
        small = render.encode(render.page(["Still serving"], size=(600, 120)).image, "PNG")

        def send(data: bytes, content_type: str) -> requests.Response:
            headers = {"Content-Type": content_type}
            return requests.post(runner.url, data=data, headers=headers, timeout=120)

        with ThreadPoolExecutor(1) as pool:
            big = pool.submit(send, big_png, "image/png")
            used_mb = 0.0
            while not big.done() and used_mb <= threshold_mb + 30:
                used_mb = worker.memory_info().vms / 2**20
                time.sleep(0.01)
            assert not big.done(), f"the PNG finished below {threshold_mb + 30} MiB"
            started = time.monotonic()
            refused = send(small, "image/png")
            refused_in = time.monotonic() - started
            assert big.result().status_code == 200

        error = assert_error(refused, 503, "out_of_memory")
        assert "MEMORY_ADMISSION_MARGIN_MB" in error["message"]
        assert "before any work" in error["message"]
        assert refused.headers["Retry-After"] == "1"
        assert refused_in < 5, refused_in  # not queued behind the photo
        assert send(small, "image/png").status_code == 200  # nothing in flight: admitted
        log = runner.log()
        assert "exceeded" not in log and "instance 2" not in log, log
    finally:
        runner.stop()
