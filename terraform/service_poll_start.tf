# PollStart (Pub/Sub): Schedules the first state check of a new job (Pub/Sub archive-jobs).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), OAuth client secret (secrets.tf), enqueue tasks as the invoker (tasks.tf).

resource "google_service_account" "poll_start" {
  project      = var.project_id
  account_id   = "portability-poll-start"
  display_name = "Runs the PollStart function"
  depends_on   = [google_project_service.services]
}

# Pushed by the archive-jobs subscription; it only schedules the first PollTask, so it gets no KMS grant.
# It still gets the OAuth client secret: functions/poll builds one Env for PollStart and PollTask
# (setup.Needs{Tokens: true}), which refuses to start without OAUTH_CLIENT_SECRET.
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

    secret_environment_variables {
      key        = local.oauth_client_secret_env.key
      project_id = var.project_id
      secret     = local.oauth_client_secret_env.secret
      version    = local.oauth_client_secret_env.version
    }
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_project_iam_member.build_logs,
    google_secret_manager_secret_iam_member.oauth_client_secret["poll_start"],
  ]
}
