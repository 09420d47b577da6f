# The two functions: `ocr` (HTTP) and `ocr_storage` (Cloud Storage finalized events), same
# source, same instance size, same environment (deploy/env.yaml). Neither is public.
# Two resources, not one with for_each: they differ in entry point, timeout, ingress,
# environment, trigger and dependencies, and for_each would rename both in existing states.

resource "google_cloudfunctions2_function" "http" {
  name     = var.http_function
  location = var.region

  build_config {
    runtime     = var.runtime
    entry_point = "ocr"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    max_instance_request_concurrency = local.concurrency
    max_instance_count               = var.max_instances
    timeout_seconds                  = var.http_timeout_seconds
    environment_variables            = local.env
    service_account_email            = google_service_account.runtime.email
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "storage" {
  name     = var.storage_function
  location = var.region

  build_config {
    runtime     = var.runtime
    entry_point = "ocr_storage"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    max_instance_request_concurrency = local.concurrency
    max_instance_count               = var.max_instances
    timeout_seconds                  = var.storage_timeout_seconds
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    service_account_email            = google_service_account.runtime.email
    environment_variables            = local.storage_env
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.input.name
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.storage_agent_publishes,
    google_project_iam_member.trigger_receives_events,
  ]
}

# A gen2 function is a Cloud Run service of the same name; its trigger's account invokes it.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_storage" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.storage.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
