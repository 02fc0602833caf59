# Transfer (Pub/Sub): Copies one part of one archive into the bucket (Pub/Sub transfer-parts).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf).

# Writes parts and archives, composes, deletes parts: on the archive bucket only.
resource "google_storage_bucket_iam_member" "transfer_writes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = module.function["transfer"].service_account_member
}
