# What every function shares: names, the deterministic URLs, the environment, and the two project-level
# grants. Each service_<name>.tf calls modules/function for one function and its own service account, and
# adds the grants only that function needs.

locals {
  function_names = {
    oauth_callback = "portability-oauth-callback"
    initiate       = "portability-initiate"
    initiate_task  = "portability-initiate-task"
    poll_start     = "portability-poll-start"
    poll_task      = "portability-poll-task"
    transfer       = "portability-transfer"
    reset          = "portability-reset"
    reconcile      = "portability-reconcile"
  }

  # A function's Cloud Run service has the function's name and, besides its random URL, the deterministic
  # URL https://SERVICE-PROJECT_NUMBER.REGION.run.app. The task targets and the public URL must be known
  # before the functions exist (PollTask checks that its own URL is the token audience), so they are
  # computed here rather than read from the functions, which would be a cycle.
  run_url = { for k, name in local.function_names : k => "https://${name}-${local.project_number}.${var.region}.run.app" }

  public_url        = coalesce(var.public_url, local.run_url.oauth_callback)
  poll_task_url     = local.run_url.poll_task
  initiate_task_url = local.run_url.initiate_task
  reconcile_url     = local.run_url.reconcile

  internal_ingress = var.internal_ingress ? "ALLOW_INTERNAL_ONLY" : "ALLOW_ALL"

  # The configuration (shared/config) is one struct for every process and each function checks only the
  # parts it uses, so every function gets the same plain settings; none of them is secret. What a function
  # may do is decided by its service account's grants, and secrets reach only the functions that need them
  # (secret_environment_variables in service_<name>.tf).
  env = {
    PROJECT_ID           = var.project_id
    LOG_LEVEL            = var.log_level
    TOPIC_INITIATE       = google_pubsub_topic.topic["initiate"].name
    TOPIC_JOBS           = google_pubsub_topic.topic["jobs"].name
    TOPIC_TRANSFER       = google_pubsub_topic.topic["transfer"].name
    TOPIC_RESET          = google_pubsub_topic.topic["reset"].name
    TOPIC_EVENTS         = google_pubsub_topic.topic["events"].name
    BUCKET               = google_storage_bucket.archive.name
    OBJECT_PREFIX        = var.object_prefix
    TASKS_QUEUE          = google_cloud_tasks_queue.tasks.id
    TASKS_INVOKER_EMAIL  = google_service_account.tasks_invoker.email
    POLL_TASK_URL        = local.poll_task_url
    INITIATE_TASK_URL    = local.initiate_task_url
    OIDC_ISSUER          = "https://accounts.google.com"
    PORTABILITY_ENDPOINT = var.portability_endpoint
    OAUTH_CLIENT_ID      = var.oauth_client_id
    PUBLIC_URL           = local.public_url
    TOKEN_KEY_URI        = "gcp-kms://${google_kms_crypto_key.tokens.id}"
    POLL_LADDER          = join(",", var.poll_ladder)
    PART_SIZE            = tostring(var.part_size_bytes)
    TIME_BASED_HORIZON   = var.time_based_horizon
    # The reconciler (service_reconcile.tf): its URL and caller (the OIDC check), and the limits it enforces.
    RECONCILE_URL           = local.reconcile_url
    RECONCILE_INVOKER_EMAIL = google_service_account.reconcile_invoker.email
    MAX_JOB_AGE             = var.max_job_age
    MAX_ROUND_AGE           = var.max_round_age
    ROUND_RETENTION         = "${var.round_retention_days * 24}h"
    ROUND_OVERLAP           = var.round_overlap
    WEBHOOK_URL             = var.webhook_url
  }

  # The OAuth client secret: every function that refreshes a user's token (the ones that may decrypt
  # tokens with the KMS key), plus PollStart (secrets.tf says why).
  oauth_client_secret_env = {
    key     = "OAUTH_CLIENT_SECRET"
    secret  = var.oauth_client_secret_id
    version = var.oauth_client_secret_version
  }

  function_members = {
    oauth_callback = module.oauth_callback.service_account_member
    initiate       = module.initiate.service_account_member
    initiate_task  = module.initiate_task.service_account_member
    poll_start     = module.poll_start.service_account_member
    poll_task      = module.poll_task.service_account_member
    transfer       = module.transfer.service_account_member
    reset          = module.reset.service_account_member
    reconcile      = module.reconcile.service_account_member
  }
}

# Firestore: IAM has no grant narrower than the project (no per-database or per-collection roles in
# Terraform), so roles/datastore.user is granted on the project, to the function accounts only.
resource "google_project_iam_member" "functions_firestore" {
  for_each = local.function_members

  project = var.project_id
  role    = "roles/datastore.user"
  member  = each.value
}

# Structured logs (Cloud Logging has no narrower resource for writing).
resource "google_project_iam_member" "functions_logs" {
  for_each = local.function_members

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = each.value
}

# Every function publishes export events.
resource "google_pubsub_topic_iam_member" "functions_publish_events" {
  for_each = local.function_members

  project = var.project_id
  topic   = google_pubsub_topic.topic["events"].name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
