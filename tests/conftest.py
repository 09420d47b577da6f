"""Test fixtures: real `functions-framework` processes on loopback ports, one per configuration.

Each server loads the real OCR engine once and is shared by every test that asks for the same
environment, so a test session pays for a handful of model loads, not one per test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def post(
        self, data: bytes, content_type: str | None = "image/png", **kwargs
    ) -> requests.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(kwargs.pop("headers", {}))
        return requests.post(self.url, data=data, headers=headers, timeout=120, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pid(self) -> int:
        """The gunicorn worker that serves (the child of the functions-framework process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return int(children.split()[0])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    tmp: Path, target: str = "ocr", wait_for_engine: bool = True, **env: str
) -> Server:
    """Start functions-framework with `env` on top of a clean OCR environment; wait until ready.

    Ready is GET / reporting the engine loaded. A CloudEvent target answers only POST, so with
    `wait_for_engine=False` ready is answering HTTP at all; its first event waits for the engine.
    """
    port = free_port()
    log_path = tmp / f"{target}-{port}.log"
    environment = {k: v for k, v in os.environ.items() if k not in ("K_SERVICE", "WORKERS")}
    environment.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **env})
    process = subprocess.Popen(
        [str(FUNCTIONS_FRAMEWORK), f"--target={target}", "--host=127.0.0.1", f"--port={port}"],
        cwd=ROOT,
        env=environment,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}/", process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"functions-framework exited:\n{server.log()}")
        try:
            response = requests.get(server.url, timeout=2)
            if not wait_for_engine or response.json()["engine"]["loaded"]:
                return server
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"functions-framework did not become ready:\n{server.log()}")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[callable]:
    """`servers(**env)` returns a running server for that environment, started at most once."""
    tmp = tmp_path_factory.mktemp("servers")
    running: dict[tuple, Server] = {}

    def get(**env: str) -> Server:
        key = tuple(sorted(env.items()))
        if key not in running:
            running[key] = start_server(tmp, **env)
        return running[key]

    yield get
    for server in running.values():
        server.stop()


@pytest.fixture(scope="session")
def server(servers) -> Server:
    """The function with its default settings."""
    return servers()


@pytest.fixture(scope="session")
def models():
    """The engine's models, loaded in this process once, for tests of single pipeline steps."""
    from function.engine import load_models
    from function.settings import Settings

    return load_models(Settings.from_env({}))
