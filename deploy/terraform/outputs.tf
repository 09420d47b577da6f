output "url" {
  description = "The HTTP function's URL (callers need roles/run.invoker and an identity token)."
  value       = google_cloudfunctions2_function.http.service_config[0].uri
}

output "input_bucket" {
  description = "Upload images here to have them OCR'd."
  value       = google_storage_bucket.input.name
}

output "output_bucket" {
  description = "Results appear here, under output_prefix."
  value       = google_storage_bucket.output.name
}

output "runtime_service_account" {
  description = "The identity the functions run as."
  value       = google_service_account.runtime.email
}

output "backfill_image_name" {
  description = "Build the backfill's image here (docs/backfill.md), then apply with backfill_image."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}/ocr-backfill"
}

output "backfill_job" {
  description = "The backfill job (null until backfill_image is set): deploy/backfill-job.sh run."
  value       = one(google_cloud_run_v2_job.backfill[*].name)
}
