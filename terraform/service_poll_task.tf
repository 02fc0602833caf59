# PollTask (HTTP): One state check of one job (Cloud Tasks, OIDC).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

# Called by Cloud Tasks with the invoker's OIDC token (tasks.tf grants run.invoker); one API call and a
# few writes: short.
module "poll_task" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.poll_task
  account_id   = "portability-poll-task"
  display_name = "Runs the PollTask function"
  description  = "One state check of one job (Cloud Tasks, OIDC)."
  labels       = local.labels
  entry_point  = "PollTask"
  build        = local.build

  timeout_seconds = 120
  max_instances   = var.max_instances.poll_task
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["poll_task"].id])
  depends_on   = [google_project_service.services]
}

resource "google_pubsub_topic_iam_member" "poll_task_publishes" {
  for_each = toset(["transfer", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.poll_task.service_account_member
}
