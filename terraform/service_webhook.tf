# Webhook (Pub/Sub, optional): delivers every export event to var.webhook_url as a POST signed with the
# webhook secret (X-Portability-Signature, see shared/webhooksig). It exists only when webhook_url is set.
#
# export-events is then pushed to it like a step's topic (pubsub.tf: export-events-webhook, ordered by
# user): retried with backoff while the endpoint answers non-2xx, and after dead_letter_max_attempts
# moved to export-events-dead-letter, kept in a pull subscription as the record of what never arrived.
#
# Its account may write logs and spans (functions.tf's runtime_members) and read the webhook secret,
# nothing else: no Firestore, bucket or KMS grant
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
