# Pub/Sub: one topic per step, each delivered by a push subscription to its function.
#
# Push subscriptions rather than Cloud Functions event triggers: an event trigger makes Eventarc create
# and own the subscription, so Terraform could set neither its dead-letter topic nor its retry backoff nor
# its retention. Here every subscription is declared: retries back off, a message that keeps failing goes
# to <topic>-dead-letter (kept in a pull subscription, never dropped), and the push carries an OIDC token
# of a dedicated account that may invoke exactly the pushed services (accounts.tf). The functions read the
# push body themselves (shared/handler.PubSub), as in the local stack.

locals {
  # Names are the defaults of the TOPIC_* variables in shared/config (terraform_test.go checks it).
  topic_names = {
    initiate = "initiate-requests"
    jobs     = "archive-jobs"
    transfer = "transfer-parts"
    reset    = "reset-requests"
    events   = "export-events"
  }

  # Topics pushed to a function: key of topic_names => the receiving function (its modules/function
  # call: url, service, timeout_seconds). export-events goes to the webhook (service_webhook.tf) only when
  # var.webhook_url is set (null otherwise): pushed like the steps, its subscription ordered by user and
  # named <topic>-webhook.
  push = {
    initiate = module.function["initiate"]
    jobs     = module.function["poll_start"]
    transfer = module.function["transfer"]
    reset    = module.function["reset"]
    events   = one(values(module.webhook))
  }

  # The keys of push that exist, known before apply (for_each needs known keys): the four step topics
  # always, export-events with a webhook.
  pushed_topics = toset(concat(["initiate", "jobs", "transfer", "reset"], [for k in local.webhook : "events"]))
}

resource "google_pubsub_topic" "topic" {
  for_each = local.topic_names

  project = var.project_id
  name    = each.value
  labels  = local.labels

  # Kept a day on the topic too: after an incident a subscription can seek back and replay.
  message_retention_duration = "86400s"

  depends_on = [google_project_service.services]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.pushed_topics

  project = var.project_id
  name    = "${local.topic_names[each.key]}-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.services]
}

# Nothing reads a dead-letter topic automatically: these pull subscriptions hold the failed messages for
# an operator (inspect, fix, republish) for up to 31 days, and never expire.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.pushed_topics

  project = var.project_id
  name    = "${local.topic_names[each.key]}-dead-letter"
  topic   = google_pubsub_topic.dead_letter[each.key].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent mints the push tokens (needed for projects created before April 2021,
# harmless after).
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.account["pubsub_push"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pushed_topics

  project = var.project_id
  name    = "${local.topic_names[each.key]}-${each.key == "events" ? "webhook" : "push"}"
  topic   = google_pubsub_topic.topic[each.key].id
  labels  = local.labels

  # The push waits as long as the function may run (at most 600 s for Pub/Sub).
  ack_deadline_seconds       = min(600, local.push[each.key].timeout_seconds)
  message_retention_duration = "604800s"
  # The webhook gets the events of one user in the order they were published (ordering key = user).
  enable_message_ordering = each.key == "events"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.dead_letter_max_attempts
  }

  push_config {
    # The path names the topic in the request logs; the handler serves every path.
    push_endpoint = "${local.push[each.key].url}/projects/${var.project_id}/topics/${local.topic_names[each.key]}"

    oidc_token {
      service_account_email = google_service_account.account["pubsub_push"].email
      audience              = local.push[each.key].url
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_service_account_iam_member.pubsub_agent_mints_push_tokens,
  ]
}

# Dead-lettering needs the service agent to acknowledge on the source subscription and publish to the
# dead-letter topic; without these grants failed messages would stay on the source subscription.
resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_push" {
  for_each = local.pushed_topics

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  for_each = local.pushed_topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}
