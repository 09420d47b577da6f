# The backfill as a Cloud Run job: N tasks, each OCR'ing its share of a bucket's objects into the
# results the Cloud Storage trigger writes (`python -m function.backfill`). Terraform does not
# build from source: build the image once (deploy/backfill-job.sh builds and deploys from
# source; or `gcloud builds submit --pack image=IMAGE`) and pass it as backfill_image. Then
# `gcloud run jobs execute ocr-backfill --region REGION --wait` runs it.

# Variables of the backfill job. `project` and `region` may also be declared by the function's
# own .tf files; keep one declaration of each when merging.
variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run job."
  type        = string
  default     = "europe-west1"
}

variable "backfill_image" {
  description = "Container image of this repository built by Google Cloud's buildpacks."
  type        = string
}

variable "backfill_bucket" {
  description = "The bucket whose objects the backfill OCRs."
  type        = string
}

variable "backfill_prefix" {
  description = "Only objects whose name starts with this (empty: the whole bucket)."
  type        = string
  default     = ""
}

variable "backfill_output_bucket" {
  description = "Bucket the results are written to (empty: the source bucket)."
  type        = string
  default     = ""
}

variable "backfill_output_prefix" {
  description = "Results are named this prefix + object name + .json (as the trigger's)."
  type        = string
  default     = "ocr-results/"
}

variable "backfill_tasks" {
  description = "Tasks (instances) the bucket is split over; at most 10000."
  type        = number
  default     = 10
}

variable "backfill_parallelism" {
  description = "Tasks running at once (0: as many as the platform allows)."
  type        = number
  default     = 10
}

variable "backfill_max_retries" {
  description = "Retries of a failed task; a retry skips what is already done."
  type        = number
  default     = 3
}

variable "backfill_task_timeout" {
  description = "Deadline of one task attempt (its whole share), as a duration."
  type        = string
  default     = "86400s"
}

variable "backfill_memory" {
  description = "Memory of each task's instance."
  type        = string
  default     = "4Gi"
}

variable "backfill_cpu" {
  description = "CPUs of each task's instance."
  type        = string
  default     = "2"
}

locals {
  backfill_output_bucket = var.backfill_output_bucket != "" ? var.backfill_output_bucket : var.backfill_bucket
  backfill_args = concat(
    ["python", "-m", "function.backfill", var.backfill_bucket],
    var.backfill_prefix != "" ? ["--prefix", var.backfill_prefix] : [],
  )
}

resource "google_service_account" "backfill" {
  project      = var.project
  account_id   = "ocr-backfill"
  display_name = "OCR backfill (Cloud Run job)"
}

# List and read the objects to OCR.
resource "google_storage_bucket_iam_member" "backfill_source" {
  bucket = var.backfill_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.backfill.email}"
}

# Read, create and replace results (replacing an object needs delete as well as create).
resource "google_storage_bucket_iam_member" "backfill_output" {
  bucket = local.backfill_output_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.backfill.email}"
}

resource "google_cloud_run_v2_job" "backfill" {
  project             = var.project
  name                = "ocr-backfill"
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
        image = var.backfill_image
        # The buildpacks' launcher puts the built Python and its packages on the path.
        command = ["/cnb/lifecycle/launcher"]
        args    = local.backfill_args

        env {
          name  = "OUTPUT_BUCKET"
          value = local.backfill_output_bucket
        }
        env {
          name  = "OUTPUT_PREFIX"
          value = var.backfill_output_prefix
        }
        env {
          name  = "LOG_LEVEL"
          value = "WARNING"
        }

        resources {
          limits = {
            cpu    = var.backfill_cpu
            memory = var.backfill_memory
          }
        }
      }
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.backfill_source,
    google_storage_bucket_iam_member.backfill_output,
  ]
}

output "backfill_job" {
  description = "Run it with: gcloud run jobs execute <this> --region <region> --wait"
  value       = google_cloud_run_v2_job.backfill.name
}
