# OAuthCallback (HTTP): Browser entry point: /start, /authorize, /callback, /status, /delete (public).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf), start-link key
# (secrets.tf).

# Browsers call it: public ingress and allUsers may invoke it. Its own checks (signed start links,
# single-use OAuth state, PKCE) guard it.
module "oauth_callback" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.oauth_callback
  account_id   = "portability-oauth-callback"
  display_name = "Runs the OAuthCallback function"
  description  = "Browser entry point: /start, /authorize, /callback, /status, /delete (public)."
  labels       = local.labels
  entry_point  = "OAuthCallback"
  build        = local.build

  timeout_seconds = 60
  max_instances   = var.max_instances.oauth_callback
  ingress         = "ALLOW_ALL"
  env             = local.env
  secret_env = [
    local.oauth_client_secret_env,
    {
      key     = "START_LINK_KEY"
      secret  = var.start_link_key_secret_id
      version = var.start_link_key_secret_version
    },
  ]

  wait_for_iam = concat(local.build_iam, [
    google_secret_manager_secret_iam_member.oauth_client_secret["oauth_callback"].id,
    google_secret_manager_secret_iam_member.start_link_key.id,
  ])
  depends_on = [google_project_service.services]
}

resource "google_pubsub_topic_iam_member" "oauth_callback_publishes_initiate" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["initiate"].name
  role    = "roles/pubsub.publisher"
  member  = module.oauth_callback.service_account_member
}

# The one public service: run.invoker for allUsers on its Cloud Run service (not the project).
resource "google_cloud_run_v2_service_iam_member" "oauth_callback_public" {
  project  = var.project_id
  location = var.region
  name     = module.oauth_callback.service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The person's "Stop and delete my data" (POST /delete, shared/purge) lists and deletes their archives:
# on the archive bucket only.
resource "google_storage_bucket_iam_member" "oauth_callback_deletes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = module.oauth_callback.service_account_member
}
