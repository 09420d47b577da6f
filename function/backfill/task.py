"""A backfill task's place in the job, and which of the work is its own: the objects whose name
hashes to its index (`Task.owns`) and, of every document, its runs of PAGES_PER_UNIT pages
(`Task.pages`). A hash of the name, not the listing order, so the split is even and the same on
every run, whatever else the bucket holds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..settings import SettingsError

PAGES_PER_UNIT = 10  # a document's pages are shared out among the tasks in runs of this many


@dataclass(frozen=True)
class Task:
    """This task's place in the job, as Cloud Run jobs set it."""

    index: int = 0
    count: int = 1
    attempt: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ = os.environ) -> Task:
        try:
            task = cls(
                index=int(env.get("CLOUD_RUN_TASK_INDEX", "0")),
                count=int(env.get("CLOUD_RUN_TASK_COUNT", "1")),
                attempt=int(env.get("CLOUD_RUN_TASK_ATTEMPT", "0")),
            )
        except ValueError:
            task = cls(-1, 0)
        if not 0 <= task.index < task.count:
            raise SettingsError(
                "CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT must be integers with "
                "0 <= index < count (Cloud Run jobs set them)."
            )
        return task

    def owns(self, name: str) -> bool:
        """Whether the object `name` is this task's: a hash of the name, not the listing order,
        so the split is even, and the same whatever else the bucket holds."""
        return self._first(name) == self.index

    def pages(self, name: str, count: int) -> list[int]:
        """This task's pages of the document `name` of `count` pages: runs of PAGES_PER_UNIT
        dealt round the tasks, the first run to the task that `owns` the name (so page 1 of 1,
        an image, is that task's too)."""
        first = self._first(name)
        return [
            page
            for page in range(1, count + 1)
            if (first + (page - 1) // PAGES_PER_UNIT) % self.count == self.index
        ]

    def _first(self, name: str) -> int:
        digest = hashlib.sha256(name.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count
