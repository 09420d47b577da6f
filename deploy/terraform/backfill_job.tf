# The backfill (docs/backfill.md) as a Cloud Run job: backfill_tasks tasks, each OCR'ing its
# share of a bucket (the input bucket unless backfill_bucket says otherwise) into exactly the
# results the storage function writes: same output bucket and prefix, same environment, same
# instance size. Terraform does not build images, so the job exists once backfill_image names
# one: build this repository with Google Cloud's buildpacks into the repository below (output
# backfill_image_name; docs/backfill.md has the command) and apply again with it. Then
# `deploy/backfill-job.sh run` or `gcloud run jobs execute ocr-backfill --wait` runs it.

locals {
  backfill_bucket = var.backfill_bucket != "" ? var.backfill_bucket : google_storage_bucket.input.name
  # `launcher -- CMD ARG...`: the buildpacks' launcher sets up the built Python and its packages,
  # then runs CMD directly (no shell re-evaluating the bucket name or prefix).
  backfill_args = concat(
    ["--", "python", "-m", "function.backfill", local.backfill_bucket],
    var.backfill_prefix != "" ? ["--prefix=${var.backfill_prefix}"] : [],
  )
}

# Where the job's image is pushed (the functions' builds keep their own repository).
resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = "ocr"
  format        = "DOCKER"
  description   = "Images of the OCR backfill job"
  depends_on    = [google_project_service.apis]
}

resource "google_service_account" "backfill" {
  account_id   = "ocr-backfill"
  display_name = "OCR backfill (Cloud Run job)"
  depends_on   = [google_project_service.apis]
}

# List and read the objects to OCR.
resource "google_storage_bucket_iam_member" "backfill_reads_source" {
  bucket = local.backfill_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.backfill.email}"
}

# Read, create and replace results (replacing an object needs delete as well as create).
resource "google_storage_bucket_iam_member" "backfill_writes_results" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.backfill.email}"
}

resource "google_cloud_run_v2_job" "backfill" {
  count               = var.backfill_image != "" ? 1 : 0
  name                = var.backfill_job
  location            = var.region
  deletion_protection = false

  template {
    task_count  = var.backfill_tasks
    parallelism = var.backfill_parallelism

    template {
      service_account = google_service_account.backfill.email
      max_retries     = var.backfill_max_retries
      timeout         = var.backfill_task_timeout

      containers {
        image   = var.backfill_image
        command = ["/cnb/lifecycle/launcher"]
        args    = local.backfill_args

        dynamic "env" {
          for_each = local.results_env
          content {
            name  = env.key
            value = env.value
          }
        }

        resources {
          limits = {
            cpu    = var.cpu
            memory = var.memory
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_storage_bucket_iam_member.backfill_reads_source,
    google_storage_bucket_iam_member.backfill_writes_results,
  ]
}
