# Transfer (Pub/Sub): Copies one part of one archive into the bucket (Pub/Sub transfer-parts).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf).

# Each part publishes the next one (transfer-parts); the last part settles the round (reset-requests).
resource "google_pubsub_topic_iam_member" "transfer_publishes" {
  for_each = toset(["transfer", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.function["transfer"].service_account_member
}

# Writes parts and archives, composes, deletes parts: on the archive bucket only.
resource "google_storage_bucket_iam_member" "transfer_writes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = module.function["transfer"].service_account_member
}
