# The reconciler's schedule, identity and IAM (service_reconcile.tf), planned against mock providers
# (offline: check.sh runs `terraform test` with the provider mirror it builds). Plan mode: nothing is
# created. override_during = plan (Terraform >= 1.11) gives the service accounts their mocked emails at
# plan time, so the OIDC identity and the grants can be compared.

mock_provider "google" {
  override_during = plan
  source          = "./tests/mocks"
}

mock_provider "archive" {}

override_resource {
  override_during = plan
  target          = google_service_account.account["reconcile_invoker"]
  values = {
    email  = "portability-reconcile-invoker@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-reconcile-invoker@pp-test.iam.gserviceaccount.com"
    name   = "projects/pp-test/serviceAccounts/portability-reconcile-invoker@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = google_service_account.account["tasks_invoker"]
  values = {
    email  = "portability-tasks-invoker@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-tasks-invoker@pp-test.iam.gserviceaccount.com"
    name   = "projects/pp-test/serviceAccounts/portability-tasks-invoker@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = google_service_account.account["pubsub_push"]
  values = {
    email  = "portability-pubsub-push@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-pubsub-push@pp-test.iam.gserviceaccount.com"
    name   = "projects/pp-test/serviceAccounts/portability-pubsub-push@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = module.function["reconcile"].google_service_account.this
  values = {
    email  = "portability-reconcile@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-reconcile@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = google_service_account.account["build"]
  values = {
    email  = "portability-build@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-build@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = module.function["transfer"].google_service_account.this
  values = {
    email  = "portability-transfer@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-transfer@pp-test.iam.gserviceaccount.com"
  }
}

override_resource {
  override_during = plan
  target          = module.function["oauth_callback"].google_service_account.this
  values = {
    email  = "portability-oauth-callback@pp-test.iam.gserviceaccount.com"
    member = "serviceAccount:portability-oauth-callback@pp-test.iam.gserviceaccount.com"
  }
}

variables {
  project_id      = "pp-test"
  oauth_client_id = "123-abc.apps.googleusercontent.com"
  bucket_name     = "pp-test-archives"
}

run "scheduler_calls_the_reconciler_as_its_own_invoker" {
  command = plan

  assert {
    condition     = google_project_service.cloudscheduler.service == "cloudscheduler.googleapis.com"
    error_message = "The Cloud Scheduler API is not enabled."
  }
  assert {
    condition     = google_cloud_scheduler_job.reconcile.schedule == "*/10 * * * *"
    error_message = "The reconciler does not run every 10 minutes by default."
  }
  assert {
    condition     = google_cloud_scheduler_job.reconcile.http_target[0].uri == "https://portability-reconcile-123456789012.europe-west1.run.app"
    error_message = "The scheduler does not call the reconciler's URL."
  }
  assert {
    condition     = google_cloud_scheduler_job.reconcile.http_target[0].oidc_token[0].audience == google_cloud_scheduler_job.reconcile.http_target[0].uri
    error_message = "The OIDC token's audience is not the reconciler's URL (the function checks it)."
  }
  assert {
    condition     = google_cloud_scheduler_job.reconcile.http_target[0].oidc_token[0].service_account_email == "portability-reconcile-invoker@pp-test.iam.gserviceaccount.com"
    error_message = "The scheduler's OIDC token is not the dedicated invoker's."
  }
  assert {
    condition     = module.function["reconcile"].service_account_email != google_service_account.account["reconcile_invoker"].email && google_service_account.account["tasks_invoker"].email != google_service_account.account["reconcile_invoker"].email
    error_message = "The invoker must be an account of its own, not the function's or the tasks invoker."
  }
  # The function verifies exactly this caller and audience.
  assert {
    condition     = local.env.RECONCILE_INVOKER_EMAIL == google_service_account.account["reconcile_invoker"].email && local.env.RECONCILE_URL == google_cloud_scheduler_job.reconcile.http_target[0].uri
    error_message = "RECONCILE_INVOKER_EMAIL / RECONCILE_URL do not name the scheduler's identity and target."
  }
}

run "the_invoker_may_invoke_only_the_reconciler" {
  command = plan

  assert {
    # (Its service name is the function's, known only after apply: accounts.tf takes it from
    # module.function["reconcile"].service.)
    condition = (google_cloud_run_v2_service_iam_member.invoker["reconcile_invoker/reconcile"].role == "roles/run.invoker" &&
    google_cloud_run_v2_service_iam_member.invoker["reconcile_invoker/reconcile"].member == google_service_account.account["reconcile_invoker"].member)
    error_message = "The invoker is not run.invoker on the reconciler's service."
  }
  assert {
    condition     = [for k, g in google_cloud_run_v2_service_iam_member.invoker : k if g.member == google_service_account.account["reconcile_invoker"].member] == ["reconcile_invoker/reconcile"]
    error_message = "The reconciler's invoker may invoke another function."
  }
}

run "the_reconciler_gets_only_the_roles_it_needs" {
  command = plan

  # Firestore and logs (project: no narrower resource), and nothing else on the project.
  assert {
    condition = (google_project_iam_member.functions_firestore["reconcile"].role == "roles/datastore.user" &&
    google_project_iam_member.functions_firestore["reconcile"].member == module.function["reconcile"].service_account_member)
    error_message = "The reconciler is not a Firestore user."
  }
  assert {
    condition = alltrue([for m in [
      google_project_iam_member.build_reads_staged_source.member,
      google_project_iam_member.build_logs.member,
    ] : m != module.function["reconcile"].service_account_member])
    error_message = "The reconciler holds a build role on the project."
  }
  # Publisher on exactly the topics it republishes to, and export-events.
  assert {
    condition = (toset([for k, g in google_pubsub_topic_iam_member.publishes : split("/", k)[1] if startswith(k, "reconcile/")]) == toset(["initiate", "transfer", "reset"]) &&
    alltrue([for k, g in google_pubsub_topic_iam_member.publishes : g.role == "roles/pubsub.publisher" && g.member == module.function["reconcile"].service_account_member if startswith(k, "reconcile/")]))
    error_message = "The reconciler must publish to initiate, transfer and reset, and no other step topic."
  }
  assert {
    condition     = google_pubsub_topic_iam_member.functions_publish_events["reconcile"].member == module.function["reconcile"].service_account_member
    error_message = "The reconciler cannot publish the events it flushes."
  }
  # Enqueuer on the queue, and actAs on the tasks invoker only (the poll tasks it re-creates carry its token).
  assert {
    condition = (google_cloud_tasks_queue_iam_member.enqueuers["reconcile"].role == "roles/cloudtasks.enqueuer" &&
    google_cloud_tasks_queue_iam_member.enqueuers["reconcile"].member == module.function["reconcile"].service_account_member)
    error_message = "The reconciler is not a Cloud Tasks enqueuer on the queue."
  }
  assert {
    condition = (google_service_account_iam_member.enqueuers_act_as_invoker["reconcile"].role == "roles/iam.serviceAccountUser" &&
    google_service_account_iam_member.enqueuers_act_as_invoker["reconcile"].service_account_id == google_service_account.account["tasks_invoker"].name)
    error_message = "The reconciler may not act as the tasks invoker (or acts as another account)."
  }
  # The token key (to cancel an overage job with the user's token), and no bucket access.
  assert {
    condition     = google_kms_crypto_key_iam_member.token_users["reconcile"].member == module.function["reconcile"].service_account_member
    error_message = "The reconciler cannot decrypt tokens to cancel a job."
  }
  assert {
    condition = alltrue([for m in [
      google_storage_bucket_iam_member.transfer_writes_archives.member,
      google_storage_bucket_iam_member.oauth_callback_deletes_archives.member,
    ] : m != module.function["reconcile"].service_account_member])
    error_message = "The reconciler must not touch the archive bucket."
  }
}

# Every query the steps and the reconciler make on more than one field has its composite index (the
# emulator never asks for one, production refuses the query without it; firestore.tf): the deadline
# queries (functions/reconcile/rules.go) an equality on state and one timestamp, ascending.
run "queries_have_their_indexes" {
  command = plan

  assert {
    condition = alltrue([for want in [
      ["resources", "COLLECTION_GROUP", "state", "ASCENDING", "claimedAt", "ASCENDING"],
      ["resources", "COLLECTION_GROUP", "state", "ASCENDING", "updatedAt", "ASCENDING"],
      ["resources", "COLLECTION_GROUP", "state", "ASCENDING", "notBefore", "ASCENDING"],
      ["resources", "COLLECTION_GROUP", "state", "ASCENDING", "pollDue", "ASCENDING"],
      ["resources", "COLLECTION_GROUP", "state", "ASCENDING", "jobStartedAt", "ASCENDING"],
      ["rounds", "COLLECTION", "state", "ASCENDING", "createdAt", "ASCENDING"],
      ["rounds", "COLLECTION", "state", "ASCENDING", "notBefore", "ASCENDING"],
      ["rounds", "COLLECTION", "state", "ASCENDING", "completedAt", "ASCENDING"],
      ["rounds", "COLLECTION", "state", "ASCENDING", "closedAt", "ASCENDING"],
      ["rounds", "COLLECTION", "user", "ASCENDING", "number", "DESCENDING"],
      ["events", "COLLECTION", "published", "ASCENDING", "occurredAt", "ASCENDING"],
      ] : length([for i in google_firestore_index.index : i if i.collection == want[0] && i.query_scope == want[1] &&
      jsonencode(flatten([for f in i.fields : [f.field_path, f.order]])) == jsonencode(slice(want, 2, 6))]) == 1
    ])
    error_message = "A query has no composite index (or two), or its fields are not in the order the query needs."
  }
  assert {
    condition     = length(google_firestore_index.index) == 11
    error_message = "An index nothing queries, or one this test does not know: add it to the list above."
  }
  assert {
    condition = (toset([for f in google_firestore_field.ttl : f.collection]) == toset(["oauthStates", "usedLinks"]) &&
    alltrue([for f in google_firestore_field.ttl : f.field == "expiresAt" && length(f.ttl_config) == 1]))
    error_message = "OAuth states and used links do not expire by TTL on expiresAt."
  }
}
