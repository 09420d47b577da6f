"""The README and docs/: the commands they give are the ones CI runs and the ones that work,
and every link between the pages leads somewhere.

"Work" without running them: a `python -m MODULE ARGS` command is run only as far as its
argument parser (which must accept ARGS), a script's subcommand must be one it has, a file it
names must exist. The gcloud flags are checked against gcloud's help in test_deploy_static.py;
what the commands do is what the rest of the suite tests.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.conftest import FUNCTIONS_FRAMEWORK, ROOT
from tests.markdown import PAGES, README, anchors, commands, links, shell_blocks

PARSED = "arguments parsed"
# Runs a module as `python -m` would, once per argument list, but stops once its argument parser
# has accepted the arguments (or exits 2 with argparse's message): nothing is started, read or
# written. The module is imported once first, so each forked run re-executes only its own code.
PARSE_ONLY = f"""
import argparse, importlib, json, os, runpy, sys
module, runs = sys.argv[1], json.loads(sys.argv[2])
depth = 0
def stop_after(method):
    def wrapped(self, *args, **kwargs):
        global depth
        depth += 1
        try:
            result = method(self, *args, **kwargs)
        finally:
            depth -= 1
        if depth == 0:  # the program's own call, not argparse's call for a subcommand
            print({PARSED!r}, flush=True)
            os._exit(0)
        return result
    return wrapped
argparse.ArgumentParser.parse_args = stop_after(argparse.ArgumentParser.parse_args)
argparse.ArgumentParser.parse_known_args = stop_after(argparse.ArgumentParser.parse_known_args)
main = importlib.util.find_spec(module + ".__main__") if "." not in module else None
importlib.import_module(main.name if main else module)  # what it imports stays imported
del sys.modules[main.name if main else module]  # runpy warns about a module imported already
for args in runs:
    pid = os.fork()
    if pid == 0:
        sys.argv = [module, *args]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        finally:
            os._exit(1)  # it ended without parsing, or argparse refused the arguments
    print(json.dumps([args, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])]), flush=True)
"""


def documented() -> list[tuple[Path, Path, list[str]]]:
    """(page, working directory, words) of every command in the pages' ```sh blocks."""
    return [
        (page, cwd, words)
        for page in PAGES
        for b in shell_blocks(page)
        for cwd, words in commands(b)
    ]


def python_modules() -> list[tuple[str, list[str]]]:
    """(module, arguments) of each `python -m` the pages give, and of what runs it for them."""
    runs = []
    for _, _, words in documented():
        if words[:2] == ["python", "-m"] and words[2] not in ("pip", "pytest"):
            module, args = words[2], words[3:]
            if module == "local_runner" and "--" in args:  # the rest goes to every task
                args, task_args = args[: args.index("--")], args[args.index("--") + 1 :]
                runs.append(("function.backfill", ["BUCKET", *task_args]))
            runs.append((module, args))
        elif re.fullmatch(r"(.*/)?deploy/backfill-job\.sh", words[0]) and words[1:2] == ["run"]:
            runs.append(("function.backfill", ["BUCKET", *words[2:]]))  # the job's arguments
    return runs


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]
    readme = README.read_text()
    assert ci_command.startswith("python -m pip install -r requirements-dev.txt")
    assert f"\n{ci_command}\n" in readme


def test_the_readme_fits_in_a_few_screens():
    assert len(README.read_text().splitlines()) <= 300, "move the details to a docs/ page"


def test_every_link_between_the_pages_leads_somewhere():
    broken = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken
    assert len(PAGES) > 5  # README and docs/: the pages were found


def test_every_documented_python_command_accepts_its_arguments():
    runs = python_modules()
    assert {"local_runner", "tests.emulator", "bench.accuracy"} <= {m for m, _ in runs}
    for module, _ in runs:
        assert find_spec(module) is not None, f"python -m {module}: no such module"
    # Only programs that parse their arguments with argparse can be stopped there.
    parsed = sorted({(m, tuple(a)) for m, a in runs if "argparse" in _source(m)})
    unparsed = {m for m, _ in runs} - {m for m, _ in parsed}
    assert unparsed <= {"bench.fuzz_decode"}, unparsed  # libFuzzer's flags, atheris parses them

    by_module: dict[str, list[list[str]]] = {}
    for module, args in parsed:
        by_module.setdefault(module, []).append(list(args))

    def parse(module: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", PARSE_ONLY, module, json.dumps(by_module[module])]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(by_module, pool.map(parse, by_module), strict=True))
    refused = {}
    for module, result in results.items():
        outcomes = [json.loads(line) for line in result.stdout.splitlines() if line[:1] == "["]
        assert len(outcomes) == len(by_module[module]), result.stderr
        for args, code in outcomes:
            if code != 0:
                refused[f"python -m {module} {' '.join(args)}"] = result.stderr[-500:]
    assert not refused
    assert sum(line == PARSED for r in results.values() for line in r.stdout.splitlines()) == len(
        parsed
    )


def _source(module: str) -> str:
    spec = find_spec(f"{module}.__main__") if find_spec(module).submodule_search_locations else None
    return Path((spec or find_spec(module)).origin).read_text()


def test_every_documented_entry_point_script_and_file_exists():
    targets = {
        node.name
        for node in ast.parse((ROOT / "main.py").read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    framework_help = subprocess.run(
        [FUNCTIONS_FRAMEWORK, "--help"], capture_output=True, text=True, check=True
    ).stdout
    missing = []
    for page, cwd, words in documented():
        where = f"{page.name}: {' '.join(words)}"
        program = words[0]
        if program == "functions-framework":
            for flag in (w.split("=")[0] for w in words[1:] if w.startswith("--")):
                if flag not in framework_help:
                    missing.append(f"{where}: no {flag}")
            target = next((w[9:] for w in words if w.startswith("--target=")), None)
            if target not in targets:
                missing.append(f"{where}: main.py has no {target}")
        elif "/" in program and program.endswith(".sh"):
            script = cwd / program
            if not script.exists():
                missing.append(f"{where}: no {program}")
            elif not re.search(rf"^{re.escape(words[1])}\)", script.read_text(), re.MULTILINE):
                missing.append(f"{where}: {program} has no subcommand {words[1]}")
        for option, value in zip(words, words[1:], strict=False):
            if option == "-r" and not (cwd / value).exists():  # pip install -r FILE
                missing.append(f"{where}: no {value}")
        if words[:3] == ["python", "-m", "pytest"]:  # the test files it names
            paths = [w.split("::")[0] for w in words[3:] if w.startswith("tests/")]
            missing += [f"{where}: no {path}" for path in paths if not (cwd / path).exists()]
        if program in ("terraform", "gcloud") and not cwd.exists():
            missing.append(f"{where}: no directory {cwd}")
    assert not missing


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("cd deploy/terraform && terraform init", [("deploy/terraform", ["terraform", "init"])]),
        (
            "a 'b c' | d; e && f & # g",
            [(".", ["a", "b c"]), (".", ["d"]), (".", ["e"]), (".", ["f"])],
        ),
        ("X=1 Y=$(a b) c \\\n  --d", [(".", ["a", "b"]), (".", ["c", "--d"])]),
    ],
)
def test_commands_are_split_as_a_shell_splits_them(block, expected):
    assert commands(block) == [((ROOT / cwd).resolve(), words) for cwd, words in expected]
