# Transfer (Pub/Sub): Copies one part of one archive into the bucket (Pub/Sub transfer-parts).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf).

resource "google_service_account" "transfer" {
  project      = var.project_id
  account_id   = "portability-transfer"
  display_name = "Runs the Transfer function"
  depends_on   = [google_project_service.services]
}

# Pushed by the transfer-parts subscription. Streams one part (PART_SIZE) from a signed URL into the
# bucket: the longest work, so the Pub/Sub maximum of 540 s, a whole CPU and room for buffers; one
# request per instance.
resource "google_cloudfunctions2_function" "transfer" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.transfer
  description = "Copies one part of one archive into the bucket (Pub/Sub transfer-parts)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "Transfer"
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
    service_account_email            = google_service_account.transfer.email
    available_memory                 = "1Gi"
    available_cpu                    = "1"
    timeout_seconds                  = 540
    min_instance_count               = 0
    max_instance_count               = var.max_instances.transfer
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
    google_secret_manager_secret_iam_member.oauth_client_secret["transfer"],
  ]
}

# Each part publishes the next one (transfer-parts); the last part settles the round (reset-requests).
resource "google_pubsub_topic_iam_member" "transfer_publishes_transfer" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["transfer"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.transfer.member
}

resource "google_pubsub_topic_iam_member" "transfer_publishes_reset" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["reset"].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.transfer.member
}

# Writes parts and archives, composes, deletes parts: on the archive bucket only.
resource "google_storage_bucket_iam_member" "transfer_writes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.transfer.member
}
