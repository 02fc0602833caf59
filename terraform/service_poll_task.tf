# PollTask (HTTP): One state check of one job (Cloud Tasks, OIDC).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), enqueue tasks as
# the invoker (tasks.tf).

resource "google_pubsub_topic_iam_member" "poll_task_publishes" {
  for_each = toset(["transfer", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.function["poll_task"].service_account_member
}
