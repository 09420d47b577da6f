# Everything a user sets. Only `project` has no default:
#   terraform apply -var project=my-project

variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of everything: functions, trigger, job, buckets, image repository."
  type        = string
  default     = "europe-west1"
}

variable "runtime" {
  description = "Python runtime (the version the tests run; rapidocr-onnxruntime stops at 3.12)."
  type        = string
  default     = "python311"
}

variable "http_function" {
  description = "Name of the HTTP function (and of its Cloud Run service)."
  type        = string
  default     = "ocr"
}

variable "storage_function" {
  description = "Name of the Cloud Storage-triggered function (and of its Cloud Run service)."
  type        = string
  default     = "ocr-storage"
}

variable "input_bucket" {
  description = "Bucket whose uploads are OCR'd. Empty: PROJECT-ocr-input."
  type        = string
  default     = ""
}

variable "output_bucket" {
  description = "Bucket the results are written to. Empty: PROJECT-ocr-results."
  type        = string
  default     = ""
}

variable "output_prefix" {
  description = "Prefix of the result objects in the output bucket."
  type        = string
  default     = "ocr-results/"
}

variable "memory" {
  description = "Memory of each instance (functions and job tasks): the measured peak + headroom."
  type        = string
  default     = "512Mi"
}

variable "cpu" {
  description = "vCPUs of each instance. At least 1: below, one request per instance at a time."
  type        = string
  default     = "1"
}

variable "max_instances" {
  description = "At most this many instances of each function at once: the cost ceiling."
  type        = number
  default     = 10
}

variable "http_timeout_seconds" {
  description = "Request timeout of the HTTP function."
  type        = number
  default     = 120
}

variable "storage_timeout_seconds" {
  description = "Timeout of one storage event; a timed-out event is retried."
  type        = number
  default     = 300
}

# The backfill job (backfill_job.tf). It writes where the storage function writes (output bucket,
# output_prefix), with the same instance size and environment.

variable "backfill_image" {
  description = "Image of this repository built by Google Cloud's buildpacks. Empty: no job yet."
  type        = string
  default     = ""
}

variable "backfill_job" {
  description = "Name of the backfill's Cloud Run job."
  type        = string
  default     = "ocr-backfill"
}

variable "backfill_bucket" {
  description = "Bucket whose objects the backfill OCRs. Empty: the input bucket."
  type        = string
  default     = ""
}

variable "backfill_prefix" {
  description = "Only objects whose name starts with this (empty: the whole bucket)."
  type        = string
  default     = ""
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
