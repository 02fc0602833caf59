# Initiate (Pub/Sub): Starts the export jobs of a round (Pub/Sub initiate-requests).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

resource "google_service_account" "initiate" {
  project      = var.project_id
  account_id   = "portability-initiate"
  display_name = "Runs the Initiate function"
  depends_on   = [google_project_service.services]
}

# Pushed by the initiate-requests subscription (pubsub.tf). One job per resource group, so a round with
# many groups takes a while: 300 s.
resource "google_cloudfunctions2_function" "initiate" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.initiate
  description = "Starts the export jobs of a round (Pub/Sub initiate-requests)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "Initiate"
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
    service_account_email            = google_service_account.initiate.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 300
    min_instance_count               = 0
    max_instance_count               = var.max_instances.initiate
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
    google_secret_manager_secret_iam_member.oauth_client_secret["initiate"],
  ]
}

resource "google_pubsub_topic_iam_member" "initiate_publishes_jobs" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["jobs"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.initiate.member
}

# A round whose resources all ended without a job (not granted, exhausted) is settled here: reset-requests.
resource "google_pubsub_topic_iam_member" "initiate_publishes_reset" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["reset"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.initiate.member
}
