# PollStart (Pub/Sub): Schedules the first state check of a new job (Pub/Sub archive-jobs).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish export-
# events (functions.tf), enqueue tasks as the invoker (tasks.tf).

resource "google_service_account" "poll_start" {
  project      = var.project_id
  account_id   = "portability-poll-start"
  display_name = "Runs the PollStart function"
  depends_on   = [google_project_service.services]
}

# Pushed by the archive-jobs subscription; it only schedules the first PollTask: no token, no KMS.
resource "google_cloudfunctions2_function" "poll_start" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.poll_start
  description = "Schedules the first state check of a new job (Pub/Sub archive-jobs)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "PollStart"
    service_account   = local.build.service_account
    docker_repository = local.build.docker_repository

    source {
      storage_source {
        bucket = local.build.bucket
        object = local.build.object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.poll_start.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = var.max_instances.poll_start
    max_instance_request_concurrency = 1
    ingress_settings                 = local.internal_ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_logs,
  ]
}
