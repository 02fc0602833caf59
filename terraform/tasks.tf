# Cloud Tasks: delayed work (the poll ladder, time-based cooldowns, the next round). The functions create
# the tasks themselves (TASKS_QUEUE), each with an OIDC token of the invoker account whose audience is the
# target URL (POLL_TASK_URL or INITIATE_TASK_URL); PollTask and InitiateTask check both. The account, and
# its run.invoker on exactly those two, are in accounts.tf.

resource "google_cloud_tasks_queue" "tasks" {
  project  = var.project_id
  location = var.region
  name     = "portability-tasks"

  # Be gentle with the Data Portability API: polls are spread out anyway; this caps bursts (many users
  # starting at once, a backlog after an outage).
  rate_limits {
    max_dispatches_per_second = var.tasks_max_dispatches_per_second
    max_concurrent_dispatches = var.tasks_max_concurrent_dispatches
  }

  # A task fails when the function answers non-2xx (a transient error: the API, Firestore, a timeout);
  # permanent errors are acknowledged by the function. Back off up to an hour.
  retry_config {
    max_attempts       = var.tasks_max_attempts
    max_retry_duration = "0s" # no time limit: max_attempts bounds the retries
    min_backoff        = "10s"
    max_backoff        = "3600s"
    max_doublings      = 6
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.services]
}

locals {
  # Functions that create tasks: enqueuer on the queue, and actAs on the invoker account (to put its OIDC
  # token on the task), on that account only.
  enqueuers = { for k, f in local.functions : k => local.function_members[k] if f.enqueues }
}

resource "google_cloud_tasks_queue_iam_member" "enqueuers" {
  for_each = local.enqueuers

  project  = var.project_id
  location = google_cloud_tasks_queue.tasks.location
  name     = google_cloud_tasks_queue.tasks.name
  role     = "roles/cloudtasks.enqueuer"
  member   = each.value
}

resource "google_service_account_iam_member" "enqueuers_act_as_invoker" {
  for_each = local.enqueuers

  service_account_id = google_service_account.account["tasks_invoker"].name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
