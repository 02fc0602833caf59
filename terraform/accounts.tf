# The service accounts besides each function's own (modules/function): the three that call functions,
# each the identity of one caller's OIDC tokens, and the one Cloud Build builds them as. Each gets only
# what it acts on: the callers run.invoker on exactly the Cloud Run services they call (below), the build
# account its grants in source.tf.

locals {
  # Key => display name; the account is portability-<key, with dashes>.
  accounts = {
    # Every Pub/Sub push carries its token (pubsub.tf).
    pubsub_push = "Pub/Sub push to the portability pipeline functions"
    # Every Cloud Task carries its token (tasks.tf: the enqueuers act as it).
    tasks_invoker = "Cloud Tasks calls to PollTask and InitiateTask"
    # Cloud Scheduler's calls to the reconciler carry its token (service_reconcile.tf).
    reconcile_invoker = "Cloud Scheduler calls to Reconcile"
    # Cloud Build builds the functions as this account instead of the project's default compute account
    # (which is often an Editor): it reads the source, writes the image and its logs, nothing else.
    build = "Builds the portability pipeline functions"
  }

  # The Cloud Run services each caller may invoke, and nothing else: the services pushed to (by topic,
  # pubsub.tf), the two task targets, the reconciler.
  invokes = {
    pubsub_push       = { for k in local.pushed_topics : k => local.push[k].service }
    tasks_invoker     = { for k in ["poll_task", "initiate_task"] : k => module.function[k].service }
    reconcile_invoker = { reconcile = module.function["reconcile"].service }
  }
}

resource "google_service_account" "account" {
  for_each = local.accounts

  project      = var.project_id
  account_id   = "portability-${replace(each.key, "_", "-")}"
  display_name = each.value
  depends_on   = [google_project_service.services]
}

# run.invoker for each caller on each Cloud Run service it calls (the function resource rejects the role),
# keyed <account>/<topic or function>.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = merge([for a, services in local.invokes : { for k, service in services : "${a}/${k}" => { account = a, service = service } }]...)

  project  = var.project_id
  location = var.region
  name     = each.value.service
  role     = "roles/run.invoker"
  member   = google_service_account.account[each.value.account].member
}
