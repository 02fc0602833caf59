# OAuthCallback (HTTP): Browser entry point: /start, /authorize, /callback, /status, /delete (public).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), start-link key
# (secrets.tf).

resource "google_service_account" "oauth_callback" {
  project      = var.project_id
  account_id   = "portability-oauth-callback"
  display_name = "Runs the OAuthCallback function"
  depends_on   = [google_project_service.services]
}

# Browsers call it: public ingress and allUsers may invoke it. Its own checks (signed start links,
# single-use OAuth state, PKCE) guard it.
resource "google_cloudfunctions2_function" "oauth_callback" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.oauth_callback
  description = "Browser entry point: /start, /authorize, /callback, /status, /delete (public)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "OAuthCallback"
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
    service_account_email            = google_service_account.oauth_callback.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = var.max_instances.oauth_callback
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env

    secret_environment_variables {
      key        = local.oauth_client_secret_env.key
      project_id = var.project_id
      secret     = local.oauth_client_secret_env.secret
      version    = local.oauth_client_secret_env.version
    }

    secret_environment_variables {
      key        = "START_LINK_KEY"
      project_id = var.project_id
      secret     = var.start_link_key_secret_id
      version    = var.start_link_key_secret_version
    }
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_project_iam_member.build_logs,
    google_secret_manager_secret_iam_member.oauth_client_secret["oauth_callback"],
    google_secret_manager_secret_iam_member.start_link_key,
  ]
}

resource "google_pubsub_topic_iam_member" "oauth_callback_publishes_initiate" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["initiate"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.oauth_callback.member
}

# The one public service: run.invoker for allUsers on its Cloud Run service (not the project).
resource "google_cloud_run_v2_service_iam_member" "oauth_callback_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.oauth_callback.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The person's "Stop and delete my data" (POST /delete, shared/purge) lists and deletes their archives:
# on the archive bucket only.
resource "google_storage_bucket_iam_member" "oauth_callback_deletes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.oauth_callback.member
}
