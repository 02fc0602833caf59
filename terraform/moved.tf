# State addresses from before modules/function: each function and its service account were resources of
# this module. These blocks let an existing deployment keep them (no replacement, no new account) when
# it applies this version; they can go once every deployment has applied it. (They move straight to the
# one for_each call of today, below.)

moved {
  from = google_service_account.oauth_callback
  to   = module.oauth_callback.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.oauth_callback
  to   = module.oauth_callback.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.initiate
  to   = module.initiate.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.initiate
  to   = module.initiate.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.initiate_task
  to   = module.initiate_task.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.initiate_task
  to   = module.initiate_task.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.poll_start
  to   = module.poll_start.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.poll_start
  to   = module.poll_start.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.poll_task
  to   = module.poll_task.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.poll_task
  to   = module.poll_task.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.transfer
  to   = module.transfer.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.transfer
  to   = module.transfer.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.reset
  to   = module.reset.google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.reset
  to   = module.reset.google_cloudfunctions2_function.this
}

moved {
  from = google_service_account.webhook["webhook"]
  to   = module.webhook["webhook"].google_service_account.this
}

moved {
  from = google_cloudfunctions2_function.webhook["webhook"]
  to   = module.webhook["webhook"].google_cloudfunctions2_function.this
}

# Before the alerts were one table (local.alerts in monitoring.tf), each was a resource of its own.

moved {
  from = google_monitoring_alert_policy.dead_letter_backlog
  to   = google_monitoring_alert_policy.alert["dead_letter_backlog"]
}

moved {
  from = google_monitoring_alert_policy.push_oldest_unacked
  to   = google_monitoring_alert_policy.alert["push_oldest_unacked"]
}

moved {
  from = google_monitoring_alert_policy.function_5xx
  to   = google_monitoring_alert_policy.alert["function_5xx"]
}

moved {
  from = google_monitoring_alert_policy.reconciler_repairs
  to   = google_monitoring_alert_policy.alert["reconciler_repairs"]
}

moved {
  from = google_monitoring_alert_policy.reconciler_silent
  to   = google_monitoring_alert_policy.alert["reconciler_silent"]
}

moved {
  from = google_monitoring_alert_policy.token_refresh_failures
  to   = google_monitoring_alert_policy.alert["token_refresh_failures"]
}

moved {
  from = google_monitoring_alert_policy.oldest_open_round
  to   = google_monitoring_alert_policy.alert["oldest_open_round"]
}

# Before the Firestore indexes were one table (local.firestore_indexes in firestore.tf), and the TTL
# fields one resource.

moved {
  from = google_firestore_index.resources_state_claimed_at
  to   = google_firestore_index.index["resources_state_claimed_at"]
}

moved {
  from = google_firestore_index.rounds_user_number
  to   = google_firestore_index.index["rounds_user_number"]
}

moved {
  from = google_firestore_index.events_unpublished
  to   = google_firestore_index.index["events_unpublished"]
}

moved {
  from = google_firestore_index.reconcile_resources["updated_at"]
  to   = google_firestore_index.index["reconcile_resources_updated_at"]
}

moved {
  from = google_firestore_index.reconcile_resources["not_before"]
  to   = google_firestore_index.index["reconcile_resources_not_before"]
}

moved {
  from = google_firestore_index.reconcile_resources["poll_due"]
  to   = google_firestore_index.index["reconcile_resources_poll_due"]
}

moved {
  from = google_firestore_index.reconcile_resources["job_started_at"]
  to   = google_firestore_index.index["reconcile_resources_job_started_at"]
}

moved {
  from = google_firestore_index.reconcile_rounds["created_at"]
  to   = google_firestore_index.index["reconcile_rounds_created_at"]
}

moved {
  from = google_firestore_index.reconcile_rounds["not_before"]
  to   = google_firestore_index.index["reconcile_rounds_not_before"]
}

moved {
  from = google_firestore_index.reconcile_rounds["completed_at"]
  to   = google_firestore_index.index["reconcile_rounds_completed_at"]
}

moved {
  from = google_firestore_index.reconcile_rounds["closed_at"]
  to   = google_firestore_index.index["reconcile_rounds_closed_at"]
}

moved {
  from = google_firestore_field.oauth_states_ttl
  to   = google_firestore_field.ttl["oauth_states"]
}

moved {
  from = google_firestore_field.used_links_ttl
  to   = google_firestore_field.ttl["used_links"]
}

# Before each function's topic grants were one resource (for_each over its topics), one resource a topic.

moved {
  from = google_pubsub_topic_iam_member.initiate_publishes_jobs
  to   = google_pubsub_topic_iam_member.initiate_publishes["jobs"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_publishes_reset
  to   = google_pubsub_topic_iam_member.initiate_publishes["reset"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_task_publishes_jobs
  to   = google_pubsub_topic_iam_member.initiate_task_publishes["jobs"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_task_publishes_reset
  to   = google_pubsub_topic_iam_member.initiate_task_publishes["reset"]
}

moved {
  from = google_pubsub_topic_iam_member.poll_task_publishes_transfer
  to   = google_pubsub_topic_iam_member.poll_task_publishes["transfer"]
}

moved {
  from = google_pubsub_topic_iam_member.poll_task_publishes_reset
  to   = google_pubsub_topic_iam_member.poll_task_publishes["reset"]
}

moved {
  from = google_pubsub_topic_iam_member.transfer_publishes_transfer
  to   = google_pubsub_topic_iam_member.transfer_publishes["transfer"]
}

moved {
  from = google_pubsub_topic_iam_member.transfer_publishes_reset
  to   = google_pubsub_topic_iam_member.transfer_publishes["reset"]
}

# Before the functions were one module call with for_each over local.functions (functions.tf), each was a
# call of its own in its service_<key>.tf.
moved {
  from = module.oauth_callback
  to   = module.function["oauth_callback"]
}

moved {
  from = module.initiate
  to   = module.function["initiate"]
}

moved {
  from = module.initiate_task
  to   = module.function["initiate_task"]
}

moved {
  from = module.poll_start
  to   = module.function["poll_start"]
}

moved {
  from = module.poll_task
  to   = module.function["poll_task"]
}

moved {
  from = module.transfer
  to   = module.function["transfer"]
}

moved {
  from = module.reset
  to   = module.function["reset"]
}

moved {
  from = module.reconcile
  to   = module.function["reconcile"]
}

# Before the topic grants were one resource over the functions' rows (publishes in local.functions), each
# function had its own resource in its service_<key>.tf.
moved {
  from = google_pubsub_topic_iam_member.initiate_publishes["jobs"]
  to   = google_pubsub_topic_iam_member.publishes["initiate/jobs"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_publishes["reset"]
  to   = google_pubsub_topic_iam_member.publishes["initiate/reset"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_task_publishes["jobs"]
  to   = google_pubsub_topic_iam_member.publishes["initiate_task/jobs"]
}

moved {
  from = google_pubsub_topic_iam_member.initiate_task_publishes["reset"]
  to   = google_pubsub_topic_iam_member.publishes["initiate_task/reset"]
}

moved {
  from = google_pubsub_topic_iam_member.poll_task_publishes["transfer"]
  to   = google_pubsub_topic_iam_member.publishes["poll_task/transfer"]
}

moved {
  from = google_pubsub_topic_iam_member.poll_task_publishes["reset"]
  to   = google_pubsub_topic_iam_member.publishes["poll_task/reset"]
}

moved {
  from = google_pubsub_topic_iam_member.transfer_publishes["transfer"]
  to   = google_pubsub_topic_iam_member.publishes["transfer/transfer"]
}

moved {
  from = google_pubsub_topic_iam_member.transfer_publishes["reset"]
  to   = google_pubsub_topic_iam_member.publishes["transfer/reset"]
}

moved {
  from = google_pubsub_topic_iam_member.reconcile_publishes["initiate"]
  to   = google_pubsub_topic_iam_member.publishes["reconcile/initiate"]
}

moved {
  from = google_pubsub_topic_iam_member.reconcile_publishes["transfer"]
  to   = google_pubsub_topic_iam_member.publishes["reconcile/transfer"]
}

moved {
  from = google_pubsub_topic_iam_member.reconcile_publishes["reset"]
  to   = google_pubsub_topic_iam_member.publishes["reconcile/reset"]
}

moved {
  from = google_pubsub_topic_iam_member.oauth_callback_publishes_initiate
  to   = google_pubsub_topic_iam_member.publishes["oauth_callback/initiate"]
}

# The webhook's subscription, dead letter and grants joined pubsub.tf's tables (key "events").
moved {
  from = google_pubsub_topic.events_dead_letter["webhook"]
  to   = google_pubsub_topic.dead_letter["events"]
}

moved {
  from = google_pubsub_subscription.events_dead_letter["webhook"]
  to   = google_pubsub_subscription.dead_letter["events"]
}

moved {
  from = google_pubsub_topic_iam_member.pubsub_agent_publishes_events_dead_letters["webhook"]
  to   = google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters["events"]
}

moved {
  from = google_pubsub_subscription.events_webhook["webhook"]
  to   = google_pubsub_subscription.push["events"]
}

moved {
  from = google_pubsub_subscription_iam_member.pubsub_agent_acks_webhook["webhook"]
  to   = google_pubsub_subscription_iam_member.pubsub_agent_acks_push["events"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes_webhook["webhook"]
  to   = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["events"]
}

# The task targets' two run.invoker grants became one resource over them.
moved {
  from = google_cloud_run_v2_service_iam_member.tasks_invoker_poll_task
  to   = google_cloud_run_v2_service_iam_member.tasks_invoker["poll_task"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.tasks_invoker_initiate_task
  to   = google_cloud_run_v2_service_iam_member.tasks_invoker["initiate_task"]
}

# The webhook's log and trace grants joined the functions' (local.runtime_members).
moved {
  from = google_project_iam_member.webhook_logs["webhook"]
  to   = google_project_iam_member.functions_logs["webhook"]
}

moved {
  from = google_project_iam_member.webhook_trace["webhook"]
  to   = google_project_iam_member.functions_trace["webhook"]
}

# The accounts besides the functions' own, and their run.invoker grants, became one table each
# (accounts.tf: local.accounts, local.invokes).
moved {
  from = google_service_account.pubsub_push
  to   = google_service_account.account["pubsub_push"]
}

moved {
  from = google_service_account.build
  to   = google_service_account.account["build"]
}

moved {
  from = google_service_account.tasks_invoker
  to   = google_service_account.account["tasks_invoker"]
}

moved {
  from = google_service_account.reconcile_invoker
  to   = google_service_account.account["reconcile_invoker"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["initiate"]
  to   = google_cloud_run_v2_service_iam_member.invoker["pubsub_push/initiate"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["jobs"]
  to   = google_cloud_run_v2_service_iam_member.invoker["pubsub_push/jobs"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["transfer"]
  to   = google_cloud_run_v2_service_iam_member.invoker["pubsub_push/transfer"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["reset"]
  to   = google_cloud_run_v2_service_iam_member.invoker["pubsub_push/reset"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.pubsub_push_invokes["events"]
  to   = google_cloud_run_v2_service_iam_member.invoker["pubsub_push/events"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.tasks_invoker["poll_task"]
  to   = google_cloud_run_v2_service_iam_member.invoker["tasks_invoker/poll_task"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.tasks_invoker["initiate_task"]
  to   = google_cloud_run_v2_service_iam_member.invoker["tasks_invoker/initiate_task"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.reconcile_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["reconcile_invoker/reconcile"]
}
