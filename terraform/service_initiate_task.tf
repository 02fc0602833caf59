# InitiateTask (HTTP): Delayed initiations: cooldowns, next rounds (Cloud Tasks, OIDC).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

# Each job it starts goes to archive-jobs; a round whose resources all ended without a job (not granted,
# exhausted) is settled here: reset-requests.
resource "google_pubsub_topic_iam_member" "initiate_task_publishes" {
  for_each = toset(["jobs", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.function["initiate_task"].service_account_member
}
