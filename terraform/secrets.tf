# Secrets live in Secret Manager and are created by the operator before apply (README.md), so their values
# never pass through Terraform state. The module only grants read access, secret by secret, to the
# functions that need them; the functions get them as environment variables at start.

locals {
  # The token users, and PollStart: functions/poll shares one Env between PollStart and PollTask, and that
  # Env requires the OAuth client at start-up (PollStart itself never refreshes a token).
  oauth_client_users = merge(local.token_users, {
    poll_start = module.function["poll_start"].service_account_member
  })

  # The secret grants each function's first revision waits for (module.function's wait_for_iam): it
  # reads its secrets at start. Every function reads the OAuth client secret; oauth-callback the
  # start-link key too.
  secret_grants = merge(
    { for k, g in google_secret_manager_secret_iam_member.oauth_client_secret : k => [g.id] },
    { oauth_callback = [google_secret_manager_secret_iam_member.oauth_client_secret["oauth_callback"].id, google_secret_manager_secret_iam_member.start_link_key.id] },
  )
}

resource "google_secret_manager_secret_iam_member" "oauth_client_secret" {
  for_each = local.oauth_client_users

  project   = var.project_id
  secret_id = var.oauth_client_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value

  depends_on = [google_project_service.services]
}

# Only oauth-callback signs and checks start and status links.
resource "google_secret_manager_secret_iam_member" "start_link_key" {
  project   = var.project_id
  secret_id = var.start_link_key_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = module.function["oauth_callback"].service_account_member

  depends_on = [google_project_service.services]
}
