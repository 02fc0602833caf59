# PollStart (Pub/Sub): Schedules the first state check of a new job (Pub/Sub archive-jobs).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), OAuth client secret (secrets.tf), enqueue tasks as the invoker (tasks.tf).

# Pushed by the archive-jobs subscription; it only schedules the first PollTask, so it gets no KMS grant.
# It still gets the OAuth client secret: functions/poll builds one Env for PollStart and PollTask
# (setup.Needs{Tokens: true}), which refuses to start without OAUTH_CLIENT_SECRET.
module "poll_start" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.poll_start
  account_id   = "portability-poll-start"
  display_name = "Runs the PollStart function"
  description  = "Schedules the first state check of a new job (Pub/Sub archive-jobs)."
  labels       = local.labels
  entry_point  = "PollStart"
  build        = local.build

  timeout_seconds = 60
  max_instances   = var.max_instances.poll_start
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["poll_start"].id])
  depends_on   = [google_project_service.services]
}
