# Reset (Pub/Sub): ends a round: schedules the next round of a time-based grant, or makes the final
# authorization reset (Pub/Sub reset-requests).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

# Pushed by the reset-requests subscription; one API call (authorization:reset) and a few writes, or
# scheduling the next round: 300 s leaves room for slow API answers.
module "reset" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.reset
  account_id   = "portability-reset"
  display_name = "Runs the Reset function"
  description  = "Ends a round: next round of a time-based grant, or the final authorization reset (Pub/Sub reset-requests)."
  labels       = local.labels
  entry_point  = "Reset"
  build        = local.build

  timeout_seconds = 300
  max_instances   = var.max_instances.reset
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["reset"].id])
  depends_on   = [google_project_service.services]
}

# No bucket grant: Reset does not touch the bucket (setup.Needs without Storage). When a purge that deletes
# a user's objects lands, grant roles/storage.objectAdmin on google_storage_bucket.archive here, as
# service_transfer.tf does.
