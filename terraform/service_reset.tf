# Reset (Pub/Sub): ends a round: schedules the next round of a time-based grant, or makes the final
# authorization reset (Pub/Sub reset-requests).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

resource "google_service_account" "reset" {
  project      = var.project_id
  account_id   = "portability-reset"
  display_name = "Runs the Reset function"
  depends_on   = [google_project_service.services]
}

# Pushed by the reset-requests subscription; one API call (authorization:reset) and a few writes, or
# scheduling the next round: 300 s leaves room for slow API answers.
resource "google_cloudfunctions2_function" "reset" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.reset
  description = "Ends a round: next round of a time-based grant, or the final authorization reset (Pub/Sub reset-requests)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "Reset"
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
    service_account_email            = google_service_account.reset.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 300
    min_instance_count               = 0
    max_instance_count               = var.max_instances.reset
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
    google_secret_manager_secret_iam_member.oauth_client_secret["reset"],
  ]
}

# No bucket grant: Reset does not touch the bucket (setup.Needs without Storage). When a purge that deletes
# a user's objects lands, grant roles/storage.objectAdmin on google_storage_bucket.archive here, as
# service_transfer.tf does.
