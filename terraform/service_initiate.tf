# Initiate (Pub/Sub): Starts the export jobs of a round (Pub/Sub initiate-requests).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

# Pushed by the initiate-requests subscription (pubsub.tf). One job per resource group, so a round with
# many groups takes a while: 300 s.
module "initiate" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.initiate
  account_id   = "portability-initiate"
  display_name = "Runs the Initiate function"
  description  = "Starts the export jobs of a round (Pub/Sub initiate-requests)."
  labels       = local.labels
  entry_point  = "Initiate"
  build        = local.build

  timeout_seconds = 300
  max_instances   = var.max_instances.initiate
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["initiate"].id])
  depends_on   = [google_project_service.services]
}

# Each job it starts goes to archive-jobs; a round whose resources all ended without a job (not granted,
# exhausted) is settled here: reset-requests.
resource "google_pubsub_topic_iam_member" "initiate_publishes" {
  for_each = toset(["jobs", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.initiate.service_account_member
}
