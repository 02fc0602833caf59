# InitiateTask (HTTP): Delayed initiations: cooldowns, next rounds (Cloud Tasks, OIDC).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

# Called by Cloud Tasks with the invoker's OIDC token (tasks.tf grants run.invoker); short work.
module "initiate_task" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.initiate_task
  account_id   = "portability-initiate-task"
  display_name = "Runs the InitiateTask function"
  description  = "Delayed initiations: cooldowns, next rounds (Cloud Tasks, OIDC)."
  labels       = local.labels
  entry_point  = "InitiateTask"
  build        = local.build

  timeout_seconds = 120
  max_instances   = var.max_instances.initiate_task
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["initiate_task"].id])
  depends_on   = [google_project_service.services]
}

# Each job it starts goes to archive-jobs; a round whose resources all ended without a job (not granted,
# exhausted) is settled here: reset-requests.
resource "google_pubsub_topic_iam_member" "initiate_task_publishes" {
  for_each = toset(["jobs", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.initiate_task.service_account_member
}
