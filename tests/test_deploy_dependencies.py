"""The deployed dependency set loads on the platform's run image: headless OpenCV only.

The buildpack of Cloud Run functions installs requirements.txt with pip into a fresh layer and
runs `pip check`; the result runs on the google-22 run image, which has no GL, GLib or xcb.
These tests install requirements.txt the same way into a fresh virtual environment, check that
only the headless cv2 is there, compare what every extension module links against with the run
image's libraries (tests/google_22_run_image.txt), and start the function with every other
library of this machine hidden in a private mount namespace, reading text over HTTP.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import requests

from tests import pdfs, render
from tests.conftest import ROOT, Server, free_port

# The same flags as GoogleCloudPlatform/buildpacks pkg/python/python.go basePipInstallArgs and
# PIPInstallRequirements (then `pip check`), except two that only change where and how fast:
# --user (the buildpack installs into PYTHONUSERBASE, here a venv, where --user is refused) and
# --no-cache-dir (here pip's cache is reused, so the test stays fast).
BUILDPACK_PIP_INSTALL = [
    "-m", "pip", "install", "--requirement", "requirements.txt", "--upgrade",
    "--upgrade-strategy", "only-if-needed", "--no-warn-script-location", "--no-warn-conflicts",
    "--force-reinstall", "--no-compile", "--disable-pip-version-check",
]  # fmt: skip
# What the GUI build of OpenCV links and the run image lacks.
GUI_LIBRARIES = ["libGL.so.1", "libglib-2.0.so.0", "libgthread-2.0.so.0", "libxcb.so.1"]

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF, ldd, unshare")


def run_image_sonames() -> set[str]:
    """Every soname tests/google_22_run_image.txt lists."""
    sonames = set()
    for line in (ROOT / "tests/google_22_run_image.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            sonames.update(line.split(":", 1)[1].split())
    return sonames


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with requirements.txt installed as the buildpack does."""
    env_dir = tmp_path_factory.mktemp("buildpack") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin/python"
    install = subprocess.run(
        [str(python), *BUILDPACK_PIP_INSTALL], cwd=ROOT, capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return env_dir


def site_packages(env_dir: Path) -> Path:
    return next((env_dir / "lib").glob("python3.*/site-packages"))


def distributions(env_dir: Path) -> dict[str, dict]:
    """Name -> version and installed files of every distribution in that environment."""
    code = (
        "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): "
        "{'version': d.version, 'files': [str(f) for f in d.files or []]} "
        "for d in m.distributions()}))"
    )
    out = subprocess.run(
        [str(env_dir / "bin/python"), "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@linux_only
def test_only_the_headless_opencv_is_installed(deployed: Path):
    dists = distributions(deployed)
    # opencv-python is our stand-in, no files but its metadata: the GUI build is absent.
    stand_in = dists["opencv-python"]
    assert stand_in["version"].endswith("+headless")
    assert all(".dist-info/" in f for f in stand_in["files"]), stand_in["files"]
    assert dists["opencv-python-headless"]["version"] == stand_in["version"].split("+")[0]
    # Exactly one distribution owns cv2, and it is the headless one.
    owners = [name for name, d in dists.items() if "cv2/__init__.py" in d["files"]]
    assert owners == ["opencv-python-headless"]
    assert not (site_packages(deployed) / "opencv_python.libs").exists()


@linux_only
def test_extension_modules_link_only_what_the_run_image_has(deployed: Path):
    allowed = run_image_sonames()
    root = site_packages(deployed)
    elf_files = [
        path
        for path in root.rglob("*.so*")
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF"
    ]
    assert any(path.parent.name == "cv2" for path in elf_files), "cv2's extension not found"
    missing: dict[str, set[str]] = {}
    resolved = 0
    for path in elf_files:
        ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for line in ldd.splitlines():
            # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "libfoo.so => not found"
            match = re.match(r"\s*(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$", line)
            if not match:
                continue  # the vDSO, the loader itself, "statically linked"
            soname, target = match.groups()
            resolved += 1
            inside = target.startswith(str(deployed))  # bundled in a wheel (.libs, $ORIGIN)
            if not inside and soname not in allowed:
                missing.setdefault(soname, set()).add(str(path.relative_to(root)))
    assert resolved > len(elf_files), "ldd resolved (almost) nothing"
    assert not missing, f"libraries the google-22 run image lacks: {missing}"


def hidden_libraries(allowed: set[str]) -> list[str]:
    """Files of this machine's shared libraries (ldconfig's cache) whose soname the image lacks."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=True)
    files, kept = set(), set()
    for line in listing.stdout.splitlines():
        match = re.match(r"\s+(\S+) \((.*)\) => (\S+)$", line)
        if match and "x86-64" in match.group(2):
            name, path = match.group(1), os.path.realpath(match.group(3))
            if name in allowed:
                kept.add(path)  # also reached as "libffi.so", say: a development symlink
            else:
                files.add(path)
    return sorted(files - kept)


# Inside the namespace: hide, show what can still be loaded, then become the function.
HIDE_THEN_RUN = """
while read -r lib; do mount --bind /dev/null "$lib"; done < "$1"
"$2" -c "$3" || exit 1
shift 3
exec "$@"
"""
PROBE = f"""
import ctypes
for name in {GUI_LIBRARIES!r}:
    try:
        ctypes.CDLL(name)
        print("probe: loaded", name)
    except OSError:
        print("probe: hidden", name)
import cv2
print("probe: cv2", cv2.__version__, cv2.__file__)
"""


needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")


def hidden(tmp_path: Path, python: Path, code: str, *then: str) -> list[str]:
    """A command: in a private mount namespace, hide every library the run image lacks, run
    `python -c code`, and if that succeeded exec `then`."""
    files = hidden_libraries(run_image_sonames())
    assert files, "ldconfig listed no library to hide"
    list_file = tmp_path / "hidden.txt"
    list_file.write_text("".join(f"{path}\n" for path in files))
    user_namespace = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [
        "unshare", *user_namespace, "--mount", "--propagation", "private",
        "sh", "-c", HIDE_THEN_RUN, "sh", str(list_file), str(python), code, *then,
    ]  # fmt: skip


@linux_only
@needs_unshare
def test_function_reads_text_with_the_missing_libraries_hidden(deployed: Path, tmp_path: Path):
    port = free_port()
    log_path = tmp_path / "function.log"
    environment = {k: v for k, v in os.environ.items() if k not in ("K_SERVICE", "WORKERS")}
    environment.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    command = hidden(
        tmp_path, deployed / "bin/python", PROBE,
        str(deployed / "bin/functions-framework"), "--target=ocr", "--host=127.0.0.1",
        f"--port={port}",
    )  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
    )
    server = Server(f"http://127.0.0.1:{port}/", process, log_path)
    try:
        wait_until_loaded(server)
        log = server.log()
        for name in GUI_LIBRARIES:
            assert f"probe: loaded {name}" not in log
            assert f"probe: hidden {name}" in log
        assert re.search(rf"probe: cv2 \S+ {site_packages(deployed)}/cv2/__init__.py", log), log
        lines = ["Deployed 2026", "Headless OpenCV"]
        response = server.post(render.encode(render.page(lines).image, "PNG"))
        assert response.status_code == 200, response.text
        got = "".join(response.json()["text"].split()).lower()
        for line in lines:
            assert "".join(line.split()).lower() in got, response.json()["text"]
        # PDFium, from pypdfium2's wheel: a text layer read and a scanned page rendered.
        pdf = pdfs.pdf([pdfs.TextPage(["Born digital"]), pdfs.ScanPage(["Rendered scan"])])
        response = server.post(pdf, "application/pdf")
        assert response.status_code == 200, response.text
        pages = response.json()["pages"]
        assert [page["source"] for page in pages] == ["text_layer", "ocr"]
        assert (
            pages[0]["text"] == "Born digital"
            and "renderedscan" in pages[1]["text"].replace(" ", "").lower()
        )
    finally:
        server.stop()


@linux_only
@needs_unshare
def test_the_gui_build_fails_to_import_with_the_same_libraries_hidden(
    deployed: Path, tmp_path: Path
):
    """The control: what the issue is about. opencv-python's cv2 cannot load there."""
    dists = distributions(deployed)
    headless, numpy = dists["opencv-python-headless"]["version"], dists["numpy"]["version"]
    gui_env = tmp_path / "gui"
    venv.create(gui_env, with_pip=True)
    python = gui_env / "bin/python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"opencv-python=={headless}", f"numpy=={numpy}"],
        check=True, capture_output=True,
    )  # fmt: skip
    outside = subprocess.run([str(python), "-c", "import cv2"], capture_output=True, text=True)
    assert outside.returncode == 0, outside.stderr  # it works on this machine...
    inside = subprocess.run(
        hidden(tmp_path, python, "import cv2", "true"), capture_output=True, text=True
    )
    assert inside.returncode != 0  # ...and not without the libraries the run image lacks
    assert "ImportError" in inside.stderr
    assert any(name.split(".so")[0] in inside.stderr for name in GUI_LIBRARIES), inside.stderr


def wait_until_loaded(server: Server, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the function exited:\n{server.log()}")
        try:
            if requests.get(server.url, timeout=2).json()["engine"]["loaded"]:
                return
        except (requests.ConnectionError, requests.Timeout, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the function did not become ready:\n{server.log()}")


def test_this_environment_has_one_cv2_the_headless_one():
    """The dev/test environment (requirements-dev.txt includes requirements.txt) as well."""
    owners = [
        dist.metadata["Name"]
        for dist in importlib.metadata.distributions()
        if any(str(f) == "cv2/__init__.py" for f in dist.files or [])
    ]
    assert owners == ["opencv-python-headless"], (
        f"cv2 owned by {owners}. An environment made before requirements.txt switched to the "
        "headless build loses cv2 when pip replaces opencv-python; repair it with: python -m pip "
        "install --force-reinstall --no-deps -r requirements.txt"
    )
    import cv2

    assert Path(cv2.__file__).parent.name == "cv2"
