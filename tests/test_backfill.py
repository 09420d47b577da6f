"""The backfill, through its real command lines (`python -m function.backfill` and
`python -m local_runner backfill`), against a real Cloud Storage emulator and rendered images."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from function.backfill.task import PAGES_PER_UNIT, Task
from tests import pdfs, render
from tests.conftest import ROOT, free_port
from tests.emulator import Emulator

PREFIX = "ocr-results/"
OBJECT = re.compile(r"(?:task (\d+): )?.*backfill object (\w+): gs://[^/]+/(\S+)")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("backfill-emulator")
    emulator = Emulator(tmp / "data", free_port(), tmp / "emulator.log")
    emulator.start()
    yield emulator
    emulator.stop()


def environment(emulator: Emulator, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUD_RUN_", "K_"))}
    return {**base, "STORAGE_EMULATOR_HOST": emulator.url, "LOG_LEVEL": "INFO", **env}


def backfill(emulator: Emulator, *args: str, **env: str) -> subprocess.CompletedProcess:
    """One task, as a job's task runs it."""
    return subprocess.run(
        [sys.executable, "-m", "function.backfill", *args],
        cwd=ROOT,
        env=environment(emulator, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def job(emulator: Emulator, bucket: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m local_runner backfill`: K tasks, each in an emulated instance."""
    return subprocess.run(
        [sys.executable, "-m", "local_runner", "backfill", bucket, *args],
        cwd=ROOT,
        env=environment(emulator),
        capture_output=True,
        text=True,
        timeout=300,
    )


def outcomes(output: str) -> list[tuple[int, str, str]]:
    """(task index, outcome, object name) of every per-object log entry."""
    return [
        (int(match[1] or 0), match[2], match[3])
        for match in map(OBJECT.match, output.splitlines())
        if match
    ]


def written(output: str) -> list[str]:
    return [name for _, outcome, name in outcomes(output) if outcome.endswith("written")]


def results(emulator: Emulator, bucket: str) -> dict[str, tuple[int, dict]]:
    """Every result object: name -> (its generation, its parsed body)."""
    found = {}
    for blob in emulator.client().list_blobs(bucket, prefix=PREFIX):
        found[blob.name] = (blob.generation, json.loads(blob.download_as_bytes()))
    return found


def page(text: str) -> bytes:
    return render.encode(render.page([text], size=(600, 120)).image, "PNG")


def squash(text: str) -> str:
    return "".join(text.split()).lower()


def test_every_object_belongs_to_exactly_one_task_and_always_the_same():
    names = [f"scans/{i}/page-{i * 7919 % 1000}.png" for i in range(3000)]
    for count in (1, 2, 3, 8):
        owners = [[i for i in range(count) if Task(i, count).owns(name)] for name in names]
        assert all(len(owner) == 1 for owner in owners)
        shares = [sum(owner == [i] for owner in owners) for i in range(count)]
        assert min(shares) > len(names) / count * 0.85, shares  # even, whatever the names
    # Pinned: the split is a hash of the name (not Python's per-process salted hash()), and a
    # change to it would move objects between the tasks of a job that is re-run.
    assert [Task(i, 3).owns("scans/invoice-17.jpg") for i in range(3)] == [False, True, False]
    assert [Task(i, 8).owns("scans/receipt.png") for i in range(8)].index(True) == 5


def test_a_documents_pages_are_dealt_to_the_tasks_in_runs():
    for count in (1, 2, 3, 8):
        for pages in (1, 10, 11, 95):
            shares = [Task(i, count).pages("scans/long.pdf", pages) for i in range(count)]
            assert sorted(page for share in shares for page in share) == list(range(1, pages + 1))
            owner = next(i for i in range(count) if Task(i, count).owns("scans/long.pdf"))
            assert 1 in shares[owner]  # page 1 (an image's only page) goes to the name's owner
            largest = -(-pages // PAGES_PER_UNIT) // count + 1  # runs per task, at most
            assert all(len(share) <= largest * PAGES_PER_UNIT for share in shares)


def test_a_long_document_is_shared_by_pages_and_written_once(emulator):
    bucket = "backfill-documents"
    emulator.create_bucket(bucket)
    count = 25  # three runs of pages: 10, 10 and 5, for three tasks
    data = pdfs.pdf([pdfs.TextPage([f"Schedule page {n}"]) for n in range(1, count + 1)])
    document = emulator.upload(bucket, "scans/schedule.pdf", data, "application/pdf")
    image = emulator.upload(bucket, "scans/cover.png", page("Cover sheet"), "image/png")

    run = job(emulator, bucket, "--tasks", "3")

    assert run.returncode == 0, run.stdout + run.stderr
    done = results(emulator, bucket)
    assert set(done) == {f"{PREFIX}scans/schedule.pdf.json", f"{PREFIX}scans/cover.png.json"}
    body = done[f"{PREFIX}scans/schedule.pdf.json"][1]
    assert body["source"]["generation"] == document["generation"]
    assert body["text"].split("\f") == [f"Schedule page {n}" for n in range(1, count + 1)]
    assert done[f"{PREFIX}scans/cover.png.json"][1]["source"]["generation"] == image["generation"]
    # Every task read its own run of pages, one of them wrote the result, the image once.
    name = "scans/schedule.pdf"
    entries = [line for line in run.stdout.splitlines() if f"/{name}" in line]
    read = [int(line.split(" pages_read=")[1].split()[0]) for line in entries]
    assert sorted(read) == [5, 10, 10]
    pdf_outcomes = sorted(outcome for _, outcome, seen in outcomes(run.stdout) if seen == name)
    assert pdf_outcomes == ["pages_written", "pages_written", "written"]
    assert [name for name in written(run.stdout) if name.endswith(".png")] == ["scans/cover.png"]


def test_a_document_past_the_deadline_goes_on_from_its_checkpoints(emulator):
    bucket = "backfill-deadline"
    emulator.create_bucket(bucket)
    count = 20  # small scans, each a full OCR: several rounds of a one-second deadline
    data = pdfs.scans_outlasting_a_second("Annex page", count)
    emulator.upload(bucket, "scans/annex.pdf", data, "application/pdf")

    run = backfill(emulator, bucket, REQUEST_TIMEOUT_SECONDS="1")

    assert run.returncode == 0, run.stderr
    seen = [outcome for _, outcome, _ in outcomes(run.stderr)]
    assert len(seen) >= 2 and set(seen[:-1]) == {"retry"} and seen[-1] == "written", seen
    read = [int(line.split(" pages_read=")[1].split()[0]) for line in run.stderr.splitlines()
            if "backfill object" in line]  # fmt: skip
    assert sum(read) == count  # every page once, over the rounds
    body = results(emulator, bucket)[f"{PREFIX}scans/annex.pdf.json"][1]
    texts = body["text"].split("\f")
    assert [text.splitlines()[0] for text in texts] == [
        f"Annex page {n} of {count}" for n in range(1, count + 1)
    ]
    assert f"pages_read={count} " in run.stderr.splitlines()[-1]  # the task's progress entry


def test_k_tasks_then_a_rerun_then_a_reupload(emulator):
    bucket = "backfill-job"
    emulator.create_bucket(bucket)
    texts = {f"scans/page-{i}.png": f"Receipt {1040 + i}" for i in range(5)}
    sources = {name: emulator.upload(bucket, name, page(text), "image/png") for name, text in
               texts.items()}  # fmt: skip
    sources["scans/notes.csv"] = emulator.upload(
        bucket, "scans/notes.csv", b"a,b\n1,2\n", "text/csv"
    )
    sources["scans/fake.png"] = emulator.upload(bucket, "scans/fake.png", b"not a png", "image/png")

    first = job(emulator, bucket, "--tasks", "3")

    assert first.returncode == 0, first.stdout + first.stderr
    assert "all 3 task(s) succeeded" in first.stdout
    seen = outcomes(first.stdout)
    for name in sources:  # each object handled by exactly one task, once
        assert len([entry for entry in seen if entry[2] == name]) == 1, (name, seen)
    assert len({task for task, _, _ in seen}) > 1  # the work really was split
    done = results(emulator, bucket)
    assert set(done) == {f"{PREFIX}{name}.json" for name in sources}  # exactly one each
    for name, metadata in sources.items():
        body = done[f"{PREFIX}{name}.json"][1]
        assert body["source"] == {
            "bucket": bucket,
            "name": name,
            "generation": metadata["generation"],
        }
        if name in texts:
            assert squash(texts[name]) in squash(body["text"]), body["text"]
    assert done[f"{PREFIX}scans/notes.csv.json"][1]["error"]["code"] == "unsupported_media_type"
    assert done[f"{PREFIX}scans/fake.png.json"][1]["error"]["code"] == "invalid_image"
    assert {name: emulator.downloads(bucket, name) for name in texts} == dict.fromkeys(texts, 1)

    read_by_this_test = {result: emulator.downloads(bucket, result) for result in done}
    second = job(emulator, bucket, "--tasks", "3")
    read_since = {result: emulator.downloads(bucket, result) for result in done}

    assert second.returncode == 0, second.stdout + second.stderr
    assert written(second.stdout) == []  # nothing written twice...
    assert {name: generation for name, (generation, _) in results(emulator, bucket).items()} == {
        name: generation for name, (generation, _) in done.items()
    }
    assert {name: emulator.downloads(bucket, name) for name in texts} == dict.fromkeys(texts, 1)
    again = {name: outcome for _, outcome, name in outcomes(second.stdout)}
    assert all(again[name] == "duplicate" for name in sources)  # ...and nothing downloaded
    for result in done:  # the function's own results are neither read nor OCR'd
        assert result not in again
        assert read_since[result] == read_by_this_test[result]

    name = "scans/page-0.png"
    replaced = emulator.upload(bucket, name, page("Credit note 77"), "image/png")
    third = job(emulator, bucket, "--tasks", "3")

    assert third.returncode == 0, third.stdout + third.stderr
    assert written(third.stdout) == [name]
    generation, body = results(emulator, bucket)[f"{PREFIX}{name}.json"]
    assert body["source"]["generation"] == replaced["generation"] != sources[name]["generation"]
    assert "creditnote77" in squash(body["text"])
    assert generation != done[f"{PREFIX}{name}.json"][0]
    assert list(emulator.client().list_blobs(bucket, prefix=f"{PREFIX}{PREFIX}")) == []


def start_task(emulator: Emulator, bucket: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "function.backfill", bucket],
        cwd=ROOT,
        env=environment(emulator),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until_written(task: subprocess.Popen, count: int) -> list[str]:
    lines: list[str] = []
    while len(written("\n".join(lines))) < count:
        line = task.stdout.readline()
        assert line, "".join(lines)
        lines.append(line.rstrip("\n"))
    return lines


def assert_complete(emulator: Emulator, bucket: str, sources: dict[str, dict]) -> None:
    """Every result there is whole, and for the generation of its source."""
    for name, (_, body) in results(emulator, bucket).items():
        source = name.removeprefix(PREFIX).removesuffix(".json")
        assert body["source"]["generation"] == sources[source]["generation"]
        assert body["text"] and body["lines"]


def test_stopped_or_killed_mid_run_and_run_again_completes_the_set_once(emulator):
    bucket = "backfill-killed"
    emulator.create_bucket(bucket)
    sources = {
        f"scans/doc-{i}.png": emulator.upload(
            bucket, f"scans/doc-{i}.png", page(f"Order {500 + i}"), "image/png"
        )
        for i in range(10)
    }

    # SIGTERM, as Cloud Run stops a task: the object in hand is finished, nothing more.
    task = start_task(emulator, bucket)
    lines = read_until_written(task, 1)
    task.send_signal(signal.SIGTERM)
    rest, _ = task.communicate(timeout=30)
    assert task.returncode == 128 + signal.SIGTERM
    output = "\n".join(lines) + "\n" + rest
    assert "stopped by SIGTERM" in output
    after_term = results(emulator, bucket)
    assert 1 <= len(after_term) < len(sources)
    assert sorted(written(output)) == sorted(n.removeprefix(PREFIX)[:-5] for n in after_term)
    assert_complete(emulator, bucket, sources)

    # SIGKILL, as a task that outlives its grace period or its instance gets.
    task = start_task(emulator, bucket)
    read_until_written(task, 2)
    task.kill()
    task.communicate(timeout=30)
    assert_complete(emulator, bucket, sources)
    after_kill = results(emulator, bucket)
    assert len(after_term) < len(after_kill)

    final = backfill(emulator, bucket)

    assert final.returncode == 0, final.stdout + final.stderr
    done = results(emulator, bucket)
    assert set(done) == {f"{PREFIX}{name}.json" for name in sources}
    assert_complete(emulator, bucket, sources)
    for name, (generation, _) in after_kill.items():  # nothing written twice
        assert done[name][0] == generation
    assert len(written(final.stderr)) == len(sources) - len(after_kill)


def test_dry_run_prefix_since_and_limit(emulator):
    bucket = "backfill-options"
    emulator.create_bucket(bucket)
    early = [emulator.upload(bucket, f"a/{i}.png", page(f"Early {i}"), "image/png") for i in
             range(3)]  # fmt: skip
    time.sleep(1.1)  # object times have a resolution of a second or better
    late = emulator.upload(bucket, "b/late.png", page("Late"), "image/png")

    dry = backfill(emulator, bucket, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(name for _, outcome, name in outcomes(dry.stderr) if outcome == "pending") == [
        "a/0.png",
        "a/1.png",
        "a/2.png",
        "b/late.png",
    ]
    assert "pending=4 " in dry.stderr and "total=4 " in dry.stderr
    assert results(emulator, bucket) == {}
    assert all(emulator.downloads(bucket, m["name"]) == 0 for m in [*early, late])

    tasks = job(emulator, bucket, "--tasks", "2", "--", "--dry-run")  # arguments for each task
    assert tasks.returncode == 0, tasks.stdout
    assert len([entry for entry in outcomes(tasks.stdout) if entry[1] == "pending"]) == 4
    assert results(emulator, bucket) == {}

    since = backfill(emulator, bucket, "--dry-run", "--since", late["timeCreated"])
    assert since.returncode == 0, since.stderr
    assert [name for _, _, name in outcomes(since.stderr)] == ["b/late.png"]

    future = backfill(emulator, bucket, "--since", "2999-01-01")
    assert future.returncode == 0 and "total=0 " in future.stderr

    limited = backfill(emulator, bucket, "--prefix", "a/", "--limit", "2")
    assert limited.returncode == 0, limited.stderr
    assert written(limited.stderr) == ["a/0.png", "a/1.png"]
    assert set(results(emulator, bucket)) == {f"{PREFIX}a/0.png.json", f"{PREFIX}a/1.png.json"}


def test_a_task_that_cannot_work_exits_non_zero_naming_what_failed_and_is_retried(emulator):
    bucket = "backfill-too-small"
    emulator.create_bucket(bucket)
    emulator.upload(bucket, "scans/one.png", page("Too small"), "image/png")

    # Too little memory to load the engine: every attempt fails, and says so.
    run = job(emulator, bucket, "--tasks", "1", "--memory", "400MiB", "--max-retries", "1")

    assert run.returncode == 1, run.stdout
    assert "task 0 attempt 0 exited with code 1" in run.stdout
    assert "task 0 attempt 1 exited with code 1" in run.stdout
    assert "backfill object retry: gs://backfill-too-small/scans/one.png" in run.stdout
    assert "failed_objects=[{'name': 'scans/one.png'" in run.stdout
    assert results(emulator, bucket) == {}


def test_a_missing_bucket_or_bad_task_environment_is_a_usage_error(emulator):
    missing = backfill(emulator, "no-such-bucket")
    assert missing.returncode == 2 and "cannot list gs://no-such-bucket" in missing.stderr
    bad = backfill(emulator, "no-such-bucket", CLOUD_RUN_TASK_INDEX="3", CLOUD_RUN_TASK_COUNT="3")
    assert bad.returncode == 2 and "CLOUD_RUN_TASK_INDEX" in bad.stderr
