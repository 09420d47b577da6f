"""Where `serve` leaves word of the instance it runs, so `monitor` and `load` can find it.

One small JSON file per runner in the temporary directory, rewritten at every (re)start and
removed when the runner stops. A file whose runner is gone is ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .processes import alive


def _directory() -> Path:
    return Path(tempfile.gettempdir()) / "local-runner"


def _file() -> Path:
    return _directory() / f"{os.getpid()}.json"


def publish(state: dict[str, object]) -> None:
    """Record this runner's current instance (pid, url, limits)."""
    _directory().mkdir(exist_ok=True)
    temporary = _file().with_suffix(".tmp")
    temporary.write_text(json.dumps({"runner_pid": os.getpid(), **state}))
    temporary.replace(_file())  # readers never see half a file


def withdraw() -> None:
    _file().unlink(missing_ok=True)


def latest() -> dict[str, object] | None:
    """The state of the most recently (re)started runner that is still running, if any."""
    live = []
    for path in _directory().glob("*.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if alive(int(state["runner_pid"])):
            live.append((path.stat().st_mtime, state))
    return max(live, key=lambda item: item[0])[1] if live else None
