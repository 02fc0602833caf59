# Webhook (Pub/Sub, optional): delivers every export event to var.webhook_url as a POST signed with the
# webhook secret (X-Portability-Signature, see shared/webhook). It exists only when webhook_url is set.
#
# Its own push subscription on export-events (apart from the four pushed topics of pubsub.tf, which are
# always there): ordered by user, retried with backoff while the endpoint answers non-2xx, and after
# dead_letter_max_attempts moved to export-events-dead-letter, kept in a pull subscription as the record
# of what never arrived.
#
# Its account may write logs and read the webhook secret, nothing else: no Firestore, bucket or KMS grant
# (the shared Env opens a Firestore client lazily, the webhook never reads through it), and it publishes
# nothing.

locals {
  webhook = var.webhook_url == "" ? toset([]) : toset(["webhook"])
}

resource "google_service_account" "webhook" {
  for_each = local.webhook

  project      = var.project_id
  account_id   = "portability-webhook"
  display_name = "Runs the Webhook function (export events to the operator's app)"
  depends_on   = [google_project_service.services]
}

# Only the webhook function reads the signing secret.
resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  for_each = local.webhook

  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.webhook[each.key].member

  depends_on = [google_project_service.services]
}

resource "google_project_iam_member" "webhook_logs" {
  for_each = local.webhook

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.webhook[each.key].member
}

# One POST per call (30 s client timeout): 60 s is plenty.
resource "google_cloudfunctions2_function" "webhook" {
  for_each = local.webhook

  project     = var.project_id
  location    = var.region
  name        = "portability-webhook"
  description = "Posts export events to the operator's webhook, signed (Pub/Sub export-events)."
  labels      = local.labels

  build_config {
    runtime           = local.build.runtime
    entry_point       = "Webhook"
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
    service_account_email            = google_service_account.webhook[each.key].email
    available_memory                 = "256Mi"
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = 10
    max_instance_request_concurrency = 1
    ingress_settings                 = local.internal_ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env

    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = var.webhook_secret_id
      version    = var.webhook_secret_version
    }
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_project_iam_member.build_logs,
    google_secret_manager_secret_iam_member.webhook_secret,
  ]
}

resource "google_pubsub_topic" "events_dead_letter" {
  for_each = local.webhook

  project = var.project_id
  name    = "${local.topic_names.events}-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.services]
}

resource "google_pubsub_subscription" "events_dead_letter" {
  for_each = local.webhook

  project = var.project_id
  name    = "${local.topic_names.events}-dead-letter"
  topic   = google_pubsub_topic.events_dead_letter[each.key].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

resource "google_cloud_run_v2_service_iam_member" "pubsub_push_invokes_webhook" {
  for_each = local.webhook

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.webhook[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.pubsub_push.member
}

resource "google_pubsub_subscription" "events_webhook" {
  for_each = local.webhook

  project = var.project_id
  name    = "${local.topic_names.events}-webhook"
  topic   = google_pubsub_topic.topic["events"].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  # Events of one user arrive in the order they were published (ordering key = user).
  enable_message_ordering = true

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead_letter[each.key].id
    max_delivery_attempts = var.dead_letter_max_attempts
  }

  push_config {
    push_endpoint = "${local.push.events.uri}/projects/${var.project_id}/topics/${local.topic_names.events}"

    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.push.events.uri
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.pubsub_push_invokes_webhook,
    google_service_account_iam_member.pubsub_agent_mints_push_tokens,
  ]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_webhook" {
  for_each = local.webhook

  project      = var.project_id
  subscription = google_pubsub_subscription.events_webhook[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_events_dead_letters" {
  for_each = local.webhook

  project = var.project_id
  topic   = google_pubsub_topic.events_dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}
