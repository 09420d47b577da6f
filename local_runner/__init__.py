"""Run the function on a laptop inside the instance it will get on the platform.

    python -m local_runner serve    the function in an emulated instance (memory, CPUs, restarts)
    python -m local_runner monitor  that instance's memory, once or every few seconds
    python -m local_runner load     a bounded load driver that reports latency and peak memory
    python -m local_runner backfill a Cloud Run job's backfill tasks, each in an emulated instance

Modules: instance (serve), confine (what makes processes an instance: CPUs, memory limit),
cgroup (the exact memory limit), processes (an instance's process tree), state (how monitor finds
what serve runs), monitor, load, backfill.
"""


def say(message: str) -> None:
    """The runner's own lines, told apart from the instance's output it passes through."""
    print(f"local-runner: {message}", flush=True)
