# PollTask (HTTP): One state check of one job (Cloud Tasks, OIDC).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

resource "google_service_account" "poll_task" {
  project      = var.project_id
  account_id   = "portability-poll-task"
  display_name = "Runs the PollTask function"
  depends_on   = [google_project_service.services]
}

# Called by Cloud Tasks with the invoker's OIDC token (tasks.tf grants run.invoker); one API call and a
# few writes: short.
resource "google_cloudfunctions2_function" "poll_task" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.poll_task
  description = "One state check of one job (Cloud Tasks, OIDC)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "PollTask"
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
    service_account_email            = google_service_account.poll_task.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 120
    min_instance_count               = 0
    max_instance_count               = var.max_instances.poll_task
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
    google_secret_manager_secret_iam_member.oauth_client_secret["poll_task"],
  ]
}

resource "google_pubsub_topic_iam_member" "poll_task_publishes_transfer" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["transfer"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.poll_task.member
}

resource "google_pubsub_topic_iam_member" "poll_task_publishes_reset" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["reset"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.poll_task.member
}
