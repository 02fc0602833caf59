# State addresses from before modules/function: each function and its service account were resources of
# this module. These blocks let an existing deployment keep them (no replacement, no new account) when
# it applies this version; they can go once every deployment has applied it.

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
