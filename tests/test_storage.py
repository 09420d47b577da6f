"""The Cloud Storage trigger: a real emulator, real `functions-framework --target=ocr_storage`
processes, and the events Cloud Storage sends, POSTed in both CloudEvent content modes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.cloud.storage import Blob

from tests import pdfs, render
from tests.conftest import Server, free_port, start_server
from tests.emulator import Emulator, finalized, post

BUCKET = "scans"
OUTPUT_BUCKET = "ocr-out"
ENGLISH = ["Invoice 2026-117", "Total due 42.50 EUR"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("emulator")
    emulator = Emulator(tmp / "data", free_port(), tmp / "emulator.log")
    emulator.start()
    emulator.create_bucket(BUCKET)
    emulator.create_bucket(OUTPUT_BUCKET)
    yield emulator
    emulator.stop()


def storage_function(emulator: Emulator, tmp: pytest.TempPathFactory, **env: str) -> Server:
    return start_server(
        tmp.mktemp("storage"),
        target="ocr_storage",
        wait_for_engine=False,
        STORAGE_EMULATOR_HOST=emulator.url,
        **env,
    )


@pytest.fixture(scope="module")
def function(emulator, tmp_path_factory) -> Iterator[Server]:
    """Default settings: results in the same bucket, under ocr-results/."""
    server = storage_function(emulator, tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def elsewhere(emulator, tmp_path_factory) -> Iterator[Server]:
    """Results in another bucket under another prefix, a 200 kB size limit, one image at a time."""
    server = storage_function(
        emulator,
        tmp_path_factory,
        OUTPUT_BUCKET=OUTPUT_BUCKET,
        OUTPUT_PREFIX="text",
        MAX_IMAGE_BYTES="200000",
        MAX_CONCURRENT_REQUESTS="1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def english_png() -> bytes:
    return render.encode(render.page(ENGLISH).image, "PNG")


def result_blob(emulator: Emulator, name: str, bucket: str = BUCKET) -> Blob | None:
    return emulator.client().bucket(bucket).get_blob(name)


def result_of(emulator: Emulator, name: str, bucket: str = BUCKET) -> dict:
    blob = result_blob(emulator, name, bucket)
    assert blob is not None, f"no result gs://{bucket}/{name}"
    assert blob.content_type.startswith("application/json")
    return json.loads(blob.download_as_bytes())


def log_entries(server: Server, name: str) -> list[str]:
    """The function's log entries for events about object `name` (text format: key=value)."""
    return [line for line in server.log().splitlines() if f" name={name} " in line]


def outcomes(server: Server, name: str) -> list[str]:
    return [entry.split("storage event ")[1].split(":")[0] for entry in log_entries(server, name)]


def squash(text: str) -> str:
    return "".join(text.split()).lower()


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_an_upload_becomes_a_result_object_holding_the_http_answer(
    emulator, function, server, english_png, mode
):
    name = f"scans/invoice-17-{mode}.png"
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")

    response = post(function.url, finalized(metadata), mode)

    assert response.status_code == 200, function.log()[-3000:]
    body = result_of(emulator, f"ocr-results/{name}.json")
    assert body["source"] == {"bucket": BUCKET, "name": name, "generation": metadata["generation"]}
    http = server.post(english_png, "image/png").json()
    assert body.keys() == http.keys() | {"source"}
    for key in ("text", "lines", "image"):  # the same image through the same pipeline
        assert body[key] == http[key], key
    assert squash(ENGLISH[0]) in squash(body["text"]) and squash(ENGLISH[1]) in squash(body["text"])
    (entry,) = log_entries(function, name)
    assert "storage event written" in entry and f"generation={metadata['generation']}" in entry
    assert f"result=gs://{BUCKET}/ocr-results/{name}.json" in entry and "peak_rss_mb=" in entry


def test_the_ready_line_says_where_events_go(function):
    deadline = time.monotonic() + 60  # the engine loads in the background from the start
    while "Ready:" not in function.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    (line,) = [line for line in function.log().splitlines() if "Ready:" in line]
    assert f"POST Cloud Storage events to {function.url};" in line


def test_the_functions_own_results_are_skipped_not_read(emulator, function, english_png):
    name = "scans/loop.png"
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")
    assert post(function.url, finalized(metadata)).status_code == 200
    # Its own result's event, and an image someone put under the output prefix.
    own = emulator.metadata(BUCKET, f"ocr-results/{name}.json")
    planted = emulator.upload(BUCKET, "ocr-results/planted.png", english_png, "image/png")

    for metadata in (own, planted):
        assert post(function.url, finalized(metadata)).status_code == 200
        (entry,) = log_entries(function, metadata["name"])
        assert "storage event skipped" in entry
        assert emulator.downloads(BUCKET, metadata["name"]) == 0
    assert list(emulator.client().list_blobs(BUCKET, prefix="ocr-results/ocr-results/")) == []


def test_a_folder_placeholder_is_skipped(emulator, function):
    metadata = emulator.upload(BUCKET, "scans/2026/", b"", "text/plain")

    assert post(function.url, finalized(metadata)).status_code == 200
    assert "storage event skipped" in log_entries(function, "scans/2026/")[0]
    assert result_blob(emulator, "ocr-results/scans/2026/.json") is None


def test_a_duplicate_event_changes_nothing(emulator, function, english_png):
    name = "scans/twice.png"
    event = finalized(emulator.upload(BUCKET, name, english_png, "image/png"))
    assert post(function.url, event).status_code == 200
    first = result_blob(emulator, f"ocr-results/{name}.json")

    for mode in ("binary", "structured"):  # the same event delivered again
        assert post(function.url, event, mode).status_code == 200

    again = result_blob(emulator, f"ocr-results/{name}.json")
    assert (again.generation, again.updated) == (first.generation, first.updated)
    assert outcomes(function, name) == ["written", "duplicate", "duplicate"]
    assert emulator.downloads(BUCKET, name) == 1  # duplicates are recognised before downloading


def test_concurrent_deliveries_write_once(emulator, function, english_png):
    name = "scans/delivered-twice-at-once.png"
    event = finalized(emulator.upload(BUCKET, name, english_png, "image/png"))

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: post(function.url, event), range(2)))

    assert [response.status_code for response in responses] == [200, 200]
    # Both found no result and read the image; the conditional write let only one through.
    assert emulator.downloads(BUCKET, name) == 2
    assert sorted(outcomes(function, name)) == ["duplicate", "written"]


def test_a_new_generation_replaces_the_result_and_a_late_old_event_does_not(emulator, function):
    name = "scans/reissued.png"
    draft = render.encode(render.page(["Draft copy 1"], size=(600, 120)).image, "PNG")
    final = render.encode(render.page(["Final copy 2"], size=(600, 120)).image, "PNG")
    old = emulator.upload(BUCKET, name, draft, "image/png")
    assert post(function.url, finalized(old)).status_code == 200
    assert "draftcopy1" in squash(result_of(emulator, f"ocr-results/{name}.json")["text"])

    new = emulator.upload(BUCKET, name, final, "image/png")
    assert post(function.url, finalized(new)).status_code == 200
    assert post(function.url, finalized(old)).status_code == 200  # redelivered late

    body = result_of(emulator, f"ocr-results/{name}.json")
    assert body["source"]["generation"] == new["generation"] != old["generation"]
    assert "finalcopy2" in squash(body["text"])


@pytest.mark.parametrize(
    ("data", "content_type", "code", "downloaded"),
    [
        (b"month,amount\nmarch,1200\n", "text/csv", "unsupported_media_type", 0),
        (b"Plain text that claims to be a PNG", "image/png", "invalid_image", 1),
    ],
    ids=["csv", "text-as-png"],
)
def test_a_non_image_gets_an_error_result_and_is_acknowledged(
    emulator, function, data, content_type, code, downloaded
):
    name = f"scans/not-an-image-{code}"
    metadata = emulator.upload(BUCKET, name, data, content_type)

    assert post(function.url, finalized(metadata)).status_code == 200

    body = result_of(emulator, f"ocr-results/{name}.json")
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["source"] == {"bucket": BUCKET, "name": name, "generation": metadata["generation"]}
    assert set(body) == {"error", "source"}
    (entry,) = log_entries(function, name)
    assert (
        "WARNING" in entry and "storage event error_written" in entry and f"error={code}" in entry
    )
    assert emulator.downloads(BUCKET, name) == downloaded


@pytest.mark.parametrize("fate", ["deleted", "replaced"])
def test_a_vanished_generation_is_acknowledged_with_the_reason(
    emulator, function, english_png, fate
):
    name = f"scans/{fate}-before-its-event.png"
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")
    if fate == "deleted":
        emulator.client().bucket(BUCKET).blob(name).delete()
    else:  # a newer generation took its place; that one has an event of its own
        emulator.upload(BUCKET, name, english_png, "image/png")

    assert post(function.url, finalized(metadata)).status_code == 200

    assert result_blob(emulator, f"ocr-results/{name}.json") is None
    (entry,) = log_entries(function, name)
    assert "storage event refused" in entry and "error=object_gone" in entry
    assert "no longer exists" in entry


def test_events_it_does_not_handle_are_acknowledged_with_the_reason(
    emulator, function, english_png
):
    name = "scans/other-events.png"
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")
    deleted = finalized(metadata, "google.cloud.storage.object.v1.deleted")
    no_generation = finalized({k: v for k, v in metadata.items() if k != "generation"})

    for event in (deleted, no_generation):
        assert post(function.url, event).status_code == 200

    assert result_blob(emulator, f"ocr-results/{name}.json") is None
    entries = [line for line in function.log().splitlines() if "error=bad_event" in line]
    assert any(
        f"event_id={deleted['id']}" in line and "object.v1.deleted" in line for line in entries
    )
    assert any(f"event_id={no_generation['id']}" in line for line in entries)
    assert emulator.downloads(BUCKET, name) == 0


def test_a_name_too_long_for_its_result_is_refused_not_retried(emulator, function, english_png):
    # A valid object name of 1010 bytes (in segments: the emulator keeps objects as files);
    # "ocr-results/" + name + ".json" is not.
    name = "scans/" + "/".join(["n" * 200] * 5)
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")

    assert post(function.url, finalized(metadata)).status_code == 200

    (entry,) = log_entries(function, name)
    assert "storage event refused" in entry and "error=bad_event" in entry
    assert "over Cloud Storage's 1024" in entry
    assert emulator.downloads(BUCKET, name) == 0


def test_output_bucket_and_prefix(emulator, elsewhere, english_png):
    name = "scans/elsewhere.png"
    metadata = emulator.upload(BUCKET, name, english_png, "image/png")

    assert post(elsewhere.url, finalized(metadata)).status_code == 200

    body = result_of(emulator, f"text/{name}.json", OUTPUT_BUCKET)
    assert squash(ENGLISH[0]) in squash(body["text"])
    assert result_blob(emulator, f"ocr-results/{name}.json") is None
    own = emulator.metadata(OUTPUT_BUCKET, f"text/{name}.json")
    assert post(elsewhere.url, finalized(own)).status_code == 200
    assert "storage event skipped" in log_entries(elsewhere, own["name"])[0]
    assert list(emulator.client().list_blobs(OUTPUT_BUCKET, prefix="text/text/")) == []


def test_too_large_is_refused_from_the_events_size_before_downloading(emulator, elsewhere):
    name = "scans/too-large.png"
    big = render.noise_png((300, 300))
    assert len(big) > 200_000
    metadata = emulator.upload(BUCKET, name, big, "image/png")

    assert post(elsewhere.url, finalized(metadata)).status_code == 200

    body = result_of(emulator, f"text/{name}.json", OUTPUT_BUCKET)
    assert body["error"]["code"] == "too_large" and "MAX_IMAGE_BYTES" in body["error"]["message"]
    assert emulator.downloads(BUCKET, name) == 0


def test_a_size_the_event_understates_is_still_bounded_while_downloading(emulator, elsewhere):
    name = "scans/understated.png"
    metadata = emulator.upload(BUCKET, name, render.noise_png((300, 300)), "image/png")
    metadata["size"] = "1000"

    assert post(elsewhere.url, finalized(metadata)).status_code == 200

    body = result_of(emulator, f"text/{name}.json", OUTPUT_BUCKET)
    assert body["error"]["code"] == "too_large"
    assert emulator.downloads(BUCKET, name) == 1  # started, and stopped at the limit


def test_busy_means_retry(emulator, elsewhere, english_png):
    events = [
        finalized(emulator.upload(BUCKET, f"scans/busy-{i}.png", english_png, "image/png"))
        for i in range(3)
    ]

    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda event: post(elsewhere.url, event).status_code, events))

    assert set(statuses) == {200, 500}, statuses
    for event, status in zip(events, statuses, strict=True):
        if status == 500:
            (entry,) = log_entries(elsewhere, event.data["name"])
            assert "storage event retry" in entry and "error=busy" in entry
            assert post(elsewhere.url, event).status_code == 200  # the platform's retry
    for event in events:
        result = result_of(emulator, f"text/{event.data['name']}.json", OUTPUT_BUCKET)
        assert squash(ENGLISH[1]) in squash(result["text"])


def test_storage_down_means_retry_and_the_retry_writes_the_result(emulator, function, english_png):
    name = "scans/while-storage-was-down.png"
    event = finalized(emulator.upload(BUCKET, name, english_png, "image/png"))

    emulator.stop()
    try:
        refused = post(function.url, event)
    finally:
        emulator.start()  # same port, same data directory: the object and its generation remain

    assert refused.status_code == 500
    (entry,) = log_entries(function, name)
    assert "ERROR" in entry and "storage event retry" in entry
    assert post(function.url, event).status_code == 200  # the platform's retry: the same event
    body = result_of(emulator, f"ocr-results/{name}.json")
    assert body["source"]["generation"] == event.data["generation"]
    assert squash(ENGLISH[1]) in squash(body["text"])


@pytest.fixture(scope="module")
def hurried(emulator, tmp_path_factory) -> Iterator[Server]:
    """A one-second deadline: a long document takes several attempts."""
    server = storage_function(emulator, tmp_path_factory, REQUEST_TIMEOUT_SECONDS="1")
    yield server
    server.stop()


def checkpoints(emulator: Emulator, name: str) -> list[str]:
    prefix = f"ocr-results/{name}.pages/"
    return [blob.name for blob in emulator.client().list_blobs(BUCKET, prefix=prefix)]


def test_a_pdf_becomes_one_result_with_its_pages(emulator, function, server):
    name = "scans/contract.pdf"
    data = pdfs.pdf([pdfs.TextPage(ENGLISH), pdfs.ScanPage(["Signed on page two"])])
    metadata = emulator.upload(BUCKET, name, data, "application/pdf")

    assert post(function.url, finalized(metadata)).status_code == 200, function.log()[-3000:]

    body = result_of(emulator, f"ocr-results/{name}.json")
    http = server.post(data, "application/pdf").json()
    assert body.keys() == http.keys() | {"source"}
    assert [page["source"] for page in body["pages"]] == ["text_layer", "ocr"]
    for key in ("text", "document", "complete", "pages_not_read"):
        assert body[key] == http[key], key
    measured = ("timings_ms", "rss_mb", "peak_rss_mb")  # of each run: the rest is the same
    for ours, theirs in zip(body["pages"], http["pages"], strict=True):
        assert {k: v for k, v in ours.items() if k not in measured} == {
            k: v for k, v in theirs.items() if k not in measured
        }
    assert checkpoints(emulator, name) == []  # deleted once the result was written
    (entry,) = log_entries(function, name)
    assert "storage event written" in entry and "pages_read=2 " in entry


def test_a_document_stopped_by_its_deadline_resumes_on_retry_without_redoing_a_page(
    emulator, hurried
):
    # 20 small scans, each a full OCR, against a one-second deadline: each attempt reads what it
    # can (at least one page), checkpoints every page, and fails so the platform retries.
    name = "scans/long-contract.pdf"
    count = 20
    data = pdfs.scans_outlasting_a_second("Clause", count)
    event = finalized(emulator.upload(BUCKET, name, data, "application/pdf"))

    statuses = []
    while not statuses or statuses[-1] != 200:
        assert len(statuses) < 60, statuses
        statuses.append(post(hurried.url, event).status_code)  # the platform's retries
        if statuses[-1] != 200:
            assert checkpoints(emulator, name), "a stopped attempt left no checkpoint"

    assert len(statuses) >= 2 and set(statuses[:-1]) == {500}, statuses  # it was interrupted
    body = result_of(emulator, f"ocr-results/{name}.json")
    assert [page["page"] for page in body["pages"]] == list(range(1, count + 1))
    texts = body["text"].split("\f")
    assert [text.splitlines()[0] for text in texts] == [
        f"Clause {n} of {count}" for n in range(1, count + 1)
    ]
    assert body["complete"] is True and body["pages_not_read"] == []
    entries = log_entries(hurried, name)
    assert [outcome for outcome in outcomes(hurried, name)] == ["retry"] * (len(statuses) - 1) + [
        "written"
    ]
    assert all("error=timeout" in entry for entry in entries[:-1])
    # Every page read exactly once over all attempts, each attempt resuming after the last.
    read = [int(entry.split(" pages_read=")[1].split()[0]) for entry in entries]
    resumed = [int(entry.split(" pages_resumed=")[1].split()[0]) for entry in entries]
    assert sum(read) == count and all(n > 0 for n in read)
    assert resumed == [sum(read[:i]) for i in range(len(read))]
    assert checkpoints(emulator, name) == []
    assert post(hurried.url, event).status_code == 200  # a late duplicate: nothing more
    assert outcomes(hurried, name)[-1] == "duplicate"
