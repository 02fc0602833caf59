# Reconcile (HTTP): finds work that stopped moving and re-drives it through the steps' idempotent paths
# (republish an initiate, re-create a poll task, republish missing parts, settle a round, flush held
# events, republish a reset), cancels jobs past max_job_age, ends rounds past max_round_age, and deletes
# closed rounds past round_retention_days. Cloud Scheduler calls it every 10 minutes with an OIDC token of
# its own invoker account (accounts.tf: it may invoke the reconciler and nothing else).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key to cancel a job with the user's token (kms.tf), OAuth client
# secret to refresh that token (secrets.tf), enqueue poll tasks as the tasks invoker (tasks.tf).

resource "google_project_service" "cloudscheduler" {
  project            = var.project_id
  service            = "cloudscheduler.googleapis.com"
  disable_on_destroy = false
}

resource "google_cloud_scheduler_job" "reconcile" {
  project     = var.project_id
  region      = var.region
  name        = "portability-reconcile"
  description = "Runs the reconciler (functions/reconcile)."
  schedule    = var.reconcile_schedule
  time_zone   = "Etc/UTC"

  # A little more than the function's timeout; a failed run is not retried: the next one comes anyway.
  attempt_deadline = "320s"
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = local.reconcile_url

    # The function checks issuer, audience (its own URL, RECONCILE_URL) and the invoker's email.
    oidc_token {
      service_account_email = google_service_account.account["reconcile_invoker"].email
      audience              = local.reconcile_url
    }
  }

  depends_on = [google_project_service.cloudscheduler, google_cloud_run_v2_service_iam_member.invoker]
}
