"""The benchmarks' own set-up: Tesseract 5 with its languages (the OCR peer), and fonts.

    python -m bench.setup

`bench.accuracy` calls `ensure_tesseract()` itself when its configurations include Tesseract, so
nobody installs it by hand; `bench.languages` asks for its twelve language packs and the fonts
it renders with. It uses Debian's packages (`apt-get install tesseract-ocr
tesseract-ocr-chi-sim tesseract-ocr-osd ...`); where that is impossible (not root, no apt-get,
no network) it stops with a message that says what to run, or how to leave the peer out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

PACKAGES = ["tesseract-ocr", "tesseract-ocr-chi-sim", "tesseract-ocr-osd"]
LANGUAGES = {"eng", "chi_sim", "osd"}  # osd: orientation and script detection (--psm 0)
FONTS = ["fonts-dejavu-core", "fonts-liberation"]  # DejaVu Sans/Serif, Liberation Serif/Sans


class SetupError(RuntimeError):
    """Tesseract is missing and could not be installed."""


def tesseract_version() -> str | None:
    """'5.3.0' for an installed `tesseract`, else None."""
    if not shutil.which("tesseract"):
        return None
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"tesseract\s+v?(\d+\.\d+\.\d+)", out)
    return found.group(1) if found else None


def tesseract_languages() -> set[str]:
    if not shutil.which("tesseract"):
        return set()
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def _ready(languages: set[str]) -> bool:
    version = tesseract_version()
    return bool(version) and version.startswith("5.") and tesseract_languages() >= languages


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", *args]
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise SetupError("installing Tesseract needs root (or sudo) for apt-get")
        command = ["sudo", "-n", *command]
    print(f"bench.setup: {' '.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command, env=env, capture_output=True, text=True)


def ensure_tesseract(languages: set[str] = LANGUAGES) -> str:
    """Install Tesseract 5 + `languages` when missing; return its version, or raise SetupError."""
    if _ready(languages):
        return tesseract_version() or ""
    # Debian names a pack tesseract-ocr-LANG, with `-` for Tesseract's `_` (chi_sim: chi-sim)
    packs = [f"tesseract-ocr-{code.replace('_', '-')}" for code in sorted(languages)]
    _install(["tesseract-ocr", *packs])
    if not _ready(languages):
        raise SetupError(
            f"installed, but found tesseract {tesseract_version()} with languages "
            f"{sorted(tesseract_languages())}; the benchmark needs 5.x with {sorted(languages)}"
        )
    return tesseract_version() or ""


def ensure_fonts(paths: list[str]) -> None:
    """Install Debian's DejaVu and Liberation fonts when any of `paths` is missing."""
    if not all(os.path.exists(path) for path in paths):
        _install(FONTS)


def _install(packages: list[str]) -> None:
    if not shutil.which("apt-get"):
        raise SetupError("no apt-get on this machine (the benchmark installs Debian's packages)")
    install = _apt_get("install", "-y", "--no-install-recommends", *packages)
    if install.returncode != 0:  # a fresh machine has no package lists yet
        _apt_get("update")
        install = _apt_get("install", "-y", "--no-install-recommends", *packages)
    if install.returncode != 0:
        raise SetupError(f"apt-get install {' '.join(packages)} failed:\n{install.stderr.strip()}")


def explain(error: SetupError) -> str:
    return (
        f"Tesseract 5 is not available: {error}\n"
        f"Install it with `sudo apt-get install -y {' '.join(PACKAGES)}` and run again, "
        "or leave the peer out (e.g. --configs defaults,shipped)."
    )


def main() -> None:
    try:
        print(f"tesseract {ensure_tesseract()} with {sorted(tesseract_languages())}")
    except SetupError as error:
        sys.exit(explain(error))


if __name__ == "__main__":
    main()
