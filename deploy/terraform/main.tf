# What the functions and the backfill job share: providers, APIs, the source archive, buckets,
# service accounts and IAM. The functions are in functions.tf, the job in backfill_job.tf. From
# this directory:
#   terraform init && terraform apply -var project=my-project

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  root = "${path.module}/../.."
  # The functions' environment: deploy/env.yaml, the same file gcloud's --env-vars-file reads.
  env = yamldecode(file("${local.root}/deploy/env.yaml"))
  # Where results go, for the storage function and the backfill job alike.
  results_env = merge(local.env, {
    OUTPUT_BUCKET = google_storage_bucket.output.name
    OUTPUT_PREFIX = var.output_prefix
  })
  # The storage function's: an event's own deadline 30 s inside the platform's, so a long
  # document stops between pages, checkpointed, and the retried event resumes (docs/documents.md).
  storage_env = merge(local.results_env, {
    REQUEST_TIMEOUT_SECONDS = tostring(var.storage_timeout_seconds - 30)
  })
  # The platform's per-instance concurrency is the function's own admission limit.
  concurrency   = tonumber(local.env["MAX_CONCURRENT_REQUESTS"])
  input_bucket  = var.input_bucket != "" ? var.input_bucket : "${var.project}-ocr-input"
  output_bucket = var.output_bucket != "" ? var.output_bucket : "${var.project}-ocr-results"
  # What the function runs, and nothing else: the files .gcloudignore lets through.
  source_files = setunion(
    [".python-version", "main.py", "requirements.txt", "deploy/opencv-python-headless/pyproject.toml"],
    [for path in fileset(local.root, "function/**") : path if !strcontains(path, "__pycache__")],
  )
  # archive_file reads binary files (the models in function/models) only from a directory, with
  # what to leave out of it: here every other top-level file and directory, and everything else
  # under function/ and deploy/. A left-out directory is skipped unread (.venv, .git, and
  # deploy/terraform, where the archive itself is written).
  source_excludes = setsubtract(
    setunion(
      fileset(local.root, "*"),
      [for path in fileset(local.root, "*/*") : dirname(path)],
      fileset(local.root, "deploy/*"),
      [for path in fileset(local.root, "deploy/*/*") : dirname(path)],
      fileset(local.root, "function/**"),
      fileset(local.root, "deploy/opencv-python-headless/**"),
      [for path in fileset(local.root, "function/**/__pycache__/*") : dirname(path)],
    ),
    setunion(local.source_files, ["function", "deploy", "deploy/opencv-python-headless"]),
  )
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/.build/source.zip"
  source_dir  = local.root
  excludes    = local.source_excludes
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project}-ocr-source"
  location                    = var.region
  uniform_bucket_level_access = true
}

# Named after its content, so a code change is a new object and a new function revision.
resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_storage_bucket" "input" {
  name                        = local.input_bucket
  location                    = var.region
  uniform_bucket_level_access = true
}

resource "google_storage_bucket" "output" {
  name                        = local.output_bucket
  location                    = var.region
  uniform_bucket_level_access = true
}

resource "google_service_account" "runtime" {
  account_id   = "ocr-runtime"
  display_name = "OCR functions at run time"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "trigger" {
  account_id   = "ocr-trigger"
  display_name = "Eventarc trigger of the OCR storage function"
  depends_on   = [google_project_service.apis]
}

# The functions read uploads and write (and replace) results; nothing else.
resource "google_storage_bucket_iam_member" "runtime_reads_input" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_storage_bucket_iam_member" "runtime_writes_output" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

# Cloud Storage publishes its events through Pub/Sub as its own service agent.
data "google_storage_project_service_account" "agent" {
  project = var.project
}

resource "google_project_iam_member" "storage_agent_publishes" {
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.agent.email_address}"
}

# The trigger's account receives the events and invokes the storage function (functions.tf).
resource "google_project_iam_member" "trigger_receives_events" {
  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}
