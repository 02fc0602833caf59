# The functions: one row each in local.functions (what differs between them), one call of modules/function
# for all of them (module.function["<key>"]: the function and its own service account), and what they all
# share: names, the deterministic URLs, the environment, and the project-level grants. Each
# service_<key>.tf adds the grants only that function needs.

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

  # One row per function, keyed as function_names: its entry point (the routing table's, functions.go),
  # what it is for, what its work needs, the step topics it publishes to (publishes, keys of
  # topic_names; export-events is every function's), whether it decrypts tokens with the KMS token key
  # (token_key: kms.tf) and whether it creates Cloud Tasks (enqueues: tasks.tf). Rows may set memory
  # and cpu (modules/function's defaults otherwise: 256Mi, derived from the memory). Every function
  # mounts the OAuth client secret (secrets.tf says why); local.secret_grants (secrets.tf) names the
  # grants each waits for.
  functions = {
    # Browsers call it: public ingress, and allUsers may invoke it (service_oauth_callback.tf). Its own
    # checks (signed start links, single-use OAuth state, PKCE) guard it.
    oauth_callback = {
      entry_point     = "OAuthCallback"
      description     = "Browser entry point: /start, /authorize, /callback, /status, /delete (public)."
      timeout_seconds = 60
      max_instances   = var.max_instances.oauth_callback
      ingress         = "ALLOW_ALL"
      secret_env = [
        local.oauth_client_secret_env,
        {
          key     = "START_LINK_KEY"
          secret  = var.start_link_key_secret_id
          version = var.start_link_key_secret_version
        },
      ]
      # It publishes the round's first initiate request.
      publishes = ["initiate"]
      token_key = true
      enqueues  = false
    }
    # Pushed by the initiate-requests subscription (pubsub.tf). One job per resource group, so a round
    # with many groups takes a while: 300 s.
    initiate = {
      entry_point     = "Initiate"
      description     = "Starts the export jobs of a round (Pub/Sub initiate-requests)."
      timeout_seconds = 300
      max_instances   = var.max_instances.initiate
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      # Each job it starts goes to archive-jobs; a round whose resources all ended without a job (not
      # granted, exhausted) is settled here: reset-requests.
      publishes = ["jobs", "reset"]
      token_key = true
      enqueues  = true
    }
    # Called by Cloud Tasks with the invoker's OIDC token (tasks.tf grants run.invoker); short work.
    initiate_task = {
      entry_point     = "InitiateTask"
      description     = "Delayed initiations: cooldowns, next rounds (Cloud Tasks, OIDC)."
      timeout_seconds = 120
      max_instances   = var.max_instances.initiate_task
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      # Like Initiate: archive-jobs, and reset-requests for a round that ends without a job.
      publishes = ["jobs", "reset"]
      token_key = true
      enqueues  = true
    }
    # Pushed by the archive-jobs subscription; it only schedules the first PollTask, so it gets no KMS
    # grant. It still gets the OAuth client secret: functions/poll builds one Env for PollStart and
    # PollTask (setup.Needs{Tokens: true}), which refuses to start without OAUTH_CLIENT_SECRET.
    poll_start = {
      entry_point     = "PollStart"
      description     = "Schedules the first state check of a new job (Pub/Sub archive-jobs)."
      timeout_seconds = 60
      max_instances   = var.max_instances.poll_start
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      publishes       = []
      token_key       = false
      enqueues        = true
    }
    # Called by Cloud Tasks with the invoker's OIDC token (tasks.tf grants run.invoker); one API call and
    # a few writes: short.
    poll_task = {
      entry_point     = "PollTask"
      description     = "One state check of one job (Cloud Tasks, OIDC)."
      timeout_seconds = 120
      max_instances   = var.max_instances.poll_task
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      # A ready job's parts go to transfer-parts; a resource that ends without a transfer (failed,
      # refused at planning) may complete the round: reset-requests (rounds.CompleteIfDone).
      publishes = ["transfer", "reset"]
      token_key = true
      enqueues  = true
    }
    # Pushed by the transfer-parts subscription. Streams one part (PART_SIZE) from a signed URL into the
    # bucket: the longest work, so the Pub/Sub maximum of 540 s, a whole CPU and room for buffers; one
    # request per instance (modules/function's default concurrency).
    transfer = {
      entry_point     = "Transfer"
      description     = "Copies one part of one archive into the bucket (Pub/Sub transfer-parts)."
      memory          = "1Gi"
      cpu             = "1"
      timeout_seconds = 540
      max_instances   = var.max_instances.transfer
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      # Each part publishes the next one (transfer-parts); the last part settles the round (reset-requests).
      publishes = ["transfer", "reset"]
      token_key = true
      enqueues  = false
    }
    # Pushed by the reset-requests subscription; one API call (authorization:reset) and a few writes, or
    # scheduling the next round: 300 s leaves room for slow API answers. No bucket grant: Reset does not
    # touch the bucket (setup.Needs without Storage).
    reset = {
      entry_point     = "Reset"
      description     = "Ends a round: next round of a time-based grant, or the final authorization reset (Pub/Sub reset-requests)."
      timeout_seconds = 300
      max_instances   = var.max_instances.reset
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      publishes       = []
      token_key       = true
      enqueues        = true
    }
    # Called by Cloud Scheduler (service_reconcile.tf). One run reads a few pages per query and stops
    # after RECONCILE_BUDGET (4 min): 300 s covers it. One instance is enough; two overlapping runs would
    # still be safe (every repair is idempotent).
    reconcile = {
      entry_point     = "Reconcile"
      description     = "Re-drives stuck work, enforces job and round ages and retention (Cloud Scheduler, OIDC)."
      timeout_seconds = 300
      max_instances   = 1
      ingress         = local.internal_ingress
      secret_env      = [local.oauth_client_secret_env]
      # The topics it republishes to when it re-drives stuck work.
      publishes = ["initiate", "transfer", "reset"]
      # It cancels jobs past MAX_JOB_AGE with the user's token, and re-creates lost poll tasks.
      token_key = true
      enqueues  = true
    }
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
    TASKS_INVOKER_EMAIL  = google_service_account.account["tasks_invoker"].email
    POLL_TASK_URL        = local.poll_task_url
    INITIATE_TASK_URL    = local.initiate_task_url
    OIDC_ISSUER          = "https://accounts.google.com"
    PORTABILITY_ENDPOINT = var.portability_endpoint
    OAUTH_CLIENT_ID      = var.oauth_client_id
    PUBLIC_URL           = local.public_url
    RETURN_URL           = var.return_url
    TOKEN_KEY_URI        = "gcp-kms://${google_kms_crypto_key.tokens.id}"
    POLL_LADDER          = join(",", var.poll_ladder)
    PART_SIZE            = tostring(var.part_size_bytes)
    TIME_BASED_HORIZON   = var.time_based_horizon
    # Spans of every delivery go to Cloud Trace over OTLP (shared/trace); "" turns the export off.
    OTEL_EXPORTER_OTLP_ENDPOINT = var.trace_endpoint
    # The reconciler (service_reconcile.tf): its URL and caller (the OIDC check), and the limits it enforces.
    RECONCILE_URL           = local.reconcile_url
    RECONCILE_INVOKER_EMAIL = google_service_account.account["reconcile_invoker"].email
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

  # Each by its own key, never { for k, f in module.function : ... }: a reference to module.function as a
  # whole depends on every output of every function (their URLs too), and the grants made from these
  # members are ones the functions wait for (kms.tf's token users feed secrets.tf's grants): a cycle.
  function_members = {
    oauth_callback = module.function["oauth_callback"].service_account_member
    initiate       = module.function["initiate"].service_account_member
    initiate_task  = module.function["initiate_task"].service_account_member
    poll_start     = module.function["poll_start"].service_account_member
    poll_task      = module.function["poll_task"].service_account_member
    transfer       = module.function["transfer"].service_account_member
    reset          = module.function["reset"].service_account_member
    reconcile      = module.function["reconcile"].service_account_member
  }

  # Every account that runs code writes logs and spans: the functions' and, with a webhook, the webhook's
  # (service_webhook.tf), which gets nothing else of what the functions share.
  runtime_members = merge(local.function_members, { for k in local.webhook : k => module.webhook[k].service_account_member })
}

# Every function of local.functions, each with its own service account (named as the function).
module "function" {
  source   = "./modules/function"
  for_each = local.functions

  project      = var.project_id
  region       = var.region
  name         = local.function_names[each.key]
  account_id   = local.function_names[each.key]
  display_name = "Runs the ${each.value.entry_point} function"
  description  = each.value.description
  labels       = local.labels
  entry_point  = each.value.entry_point
  build        = local.build

  memory          = try(each.value.memory, null)
  cpu             = try(each.value.cpu, null)
  timeout_seconds = each.value.timeout_seconds
  max_instances   = each.value.max_instances
  ingress         = each.value.ingress
  env             = local.env
  secret_env      = each.value.secret_env

  wait_for_iam = concat(local.build_iam, local.secret_grants[each.key])
  depends_on   = [google_project_service.services]
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
  for_each = local.runtime_members

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = each.value
}

# Spans over OTLP to the Telemetry API (roles/cloudtrace.agent holds telemetry.traces.write); like logs,
# trace writing has no resource narrower than the project.
resource "google_project_iam_member" "functions_trace" {
  for_each = local.runtime_members

  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = each.value
}

# Each function may publish to the step topics its row names (publishes), on each topic.
resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = merge([for fn, f in local.functions : { for topic in f.publishes : "${fn}/${topic}" => { fn = fn, topic = topic } }]...)

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = local.function_members[each.value.fn]
}

# Every function publishes export events.
resource "google_pubsub_topic_iam_member" "functions_publish_events" {
  for_each = local.function_members

  project = var.project_id
  topic   = google_pubsub_topic.topic["events"].name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
