# OAuthCallback (HTTP): Browser entry point: /start, /authorize, /callback, /status, /delete (public).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), start-link key
# (secrets.tf).

# The one public service: run.invoker for allUsers on its Cloud Run service (not the project).
resource "google_cloud_run_v2_service_iam_member" "oauth_callback_public" {
  project  = var.project_id
  location = var.region
  name     = module.function["oauth_callback"].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The person's "Stop and delete my data" (POST /delete, shared/purge) lists and deletes their archives:
# on the archive bucket only.
resource "google_storage_bucket_iam_member" "oauth_callback_deletes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = module.function["oauth_callback"].service_account_member
}
