# Webhook (Pub/Sub, optional): delivers every export event to var.webhook_url as a POST signed with the
# webhook secret (X-Portability-Signature, see shared/webhooksig). It exists only when webhook_url is set.
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

# One POST per call (30 s client timeout): 60 s is plenty.
module "webhook" {
  source   = "./modules/function"
  for_each = local.webhook

  project      = var.project_id
  region       = var.region
  name         = "portability-webhook"
  account_id   = "portability-webhook"
  display_name = "Runs the Webhook function (export events to the operator's app)"
  description  = "Posts export events to the operator's webhook, signed (Pub/Sub export-events)."
  labels       = local.labels
  entry_point  = "Webhook"
  build        = local.build

  timeout_seconds = 60
  max_instances   = 10
  ingress         = local.internal_ingress
  env             = local.env
  secret_env = [{
    key     = "WEBHOOK_SECRET"
    secret  = var.webhook_secret_id
    version = var.webhook_secret_version
  }]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.webhook_secret[each.key].id])
  depends_on   = [google_project_service.services]
}

# Only the webhook function reads the signing secret.
resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  for_each = local.webhook

  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  # A literal key: module.webhook[each.key] would depend on every output of the module, the function's
  # too, and the function waits for this grant (a cycle). each.key is "webhook" anyway.
  member = module.webhook["webhook"].service_account_member

  depends_on = [google_project_service.services]
}

resource "google_project_iam_member" "webhook_logs" {
  for_each = local.webhook

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = module.webhook[each.key].service_account_member
}

resource "google_project_iam_member" "webhook_trace" {
  for_each = local.webhook

  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = module.webhook[each.key].service_account_member
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
  name     = module.webhook[each.key].service
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
