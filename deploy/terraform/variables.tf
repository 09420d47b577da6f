# Everything a user sets. Only `project` has no default:
#   terraform apply -var project=my-project

variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, the buckets and the trigger."
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
  description = "Memory of each instance: the measured peak plus headroom (README: Deploy)."
  type        = string
  default     = "1Gi"
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
