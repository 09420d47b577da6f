"""The README's commands are the ones CI runs and the ones that work."""

from __future__ import annotations

from tests.conftest import ROOT


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]
    readme = (ROOT / "README.md").read_text()
    assert ci_command.startswith("python -m pip install -r requirements-dev.txt")
    assert f"\n{ci_command}\n" in readme
