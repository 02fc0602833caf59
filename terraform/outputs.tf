output "public_url" {
  description = "PUBLIC_URL: where browsers reach the oauth-callback function."
  value       = local.public_url
}

output "callback_url" {
  description = "OAuth redirect URI: add it to the OAuth web client's authorized redirect URIs."
  value       = "${local.public_url}/callback"
}

output "start_url" {
  description = "Base of the signed start links the operator's app gives its users (the link's query is signed with START_LINK_KEY)."
  value       = "${local.public_url}/start"
}

output "status_url" {
  description = "Base of the signed status links."
  value       = "${local.public_url}/status"
}

output "bucket" {
  description = "The archive bucket (BUCKET); archives are under OBJECT_PREFIX/."
  value       = google_storage_bucket.archive.name
}

output "topics" {
  description = "Pub/Sub topics by role; export-events carries the pipeline's export events for subscribers to come."
  value       = { for k, t in google_pubsub_topic.topic : k => t.name }
}

output "dead_letter_subscriptions" {
  description = "Pull subscriptions holding messages that failed dead_letter_max_attempts times: watch them."
  value       = { for k, s in google_pubsub_subscription.dead_letter : local.topic_names[k] => s.id }
}

output "tasks_queue" {
  description = "TASKS_QUEUE: the Cloud Tasks queue."
  value       = google_cloud_tasks_queue.tasks.id
}

output "tasks_invoker_email" {
  description = "TASKS_INVOKER_EMAIL: the identity of every task's OIDC token."
  value       = google_service_account.account["tasks_invoker"].email
}

output "token_key_uri" {
  description = "TOKEN_KEY_URI: the Tink URI of the token-encryption key."
  value       = "gcp-kms://${google_kms_crypto_key.tokens.id}"
}

output "function_uris" {
  description = "The run.app URI of each function as reported by Cloud Run (the deterministic URLs above reach the same services)."
  value       = { for k, f in module.function : k => f.url }
}

output "source_object" {
  description = "The source zip every function was built from (gs://BUCKET/OBJECT): note it for a rollback."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}

output "service_accounts" {
  description = "Service account email of each function, and of the task and reconciler invokers, the Pub/Sub pusher and the build (accounts.tf)."
  value       = merge({ for k, f in module.function : k => f.service_account_email }, { for k, a in google_service_account.account : k => a.email })
}

output "dashboard" {
  description = "The pipeline's Cloud Monitoring dashboard (Pub/Sub backlogs, function errors and latency, repairs, rounds by state): its ID and console URL."
  value = {
    id  = google_monitoring_dashboard.pipeline.id
    url = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.pipeline.id), 3)}?project=${var.project_id}"
  }
}

output "alert_policies" {
  description = "The alert policies by alert (docs/operations.md), as resource names projects/PROJECT/alertPolicies/ID."
  value       = { for k, p in google_monitoring_alert_policy.alert : k => p.name }
}
