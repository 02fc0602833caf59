# Transfer (Pub/Sub): Copies one part of one archive into the bucket (Pub/Sub transfer-parts).
#
# Grants elsewhere: Firestore (datastore.user, project: functions.tf), logs (functions.tf), publish
# export-events (functions.tf), KMS token key (kms.tf), OAuth client secret (secrets.tf).

# Pushed by the transfer-parts subscription. Streams one part (PART_SIZE) from a signed URL into the
# bucket: the longest work, so the Pub/Sub maximum of 540 s, a whole CPU and room for buffers; one
# request per instance.
module "transfer" {
  source = "./modules/function"

  project      = var.project_id
  region       = var.region
  name         = local.function_names.transfer
  account_id   = "portability-transfer"
  display_name = "Runs the Transfer function"
  description  = "Copies one part of one archive into the bucket (Pub/Sub transfer-parts)."
  labels       = local.labels
  entry_point  = "Transfer"
  build        = local.build

  memory          = "1Gi"
  cpu             = "1"
  timeout_seconds = 540
  max_instances   = var.max_instances.transfer
  concurrency     = 1
  ingress         = local.internal_ingress
  env             = local.env
  secret_env      = [local.oauth_client_secret_env]

  wait_for_iam = concat(local.build_iam, [google_secret_manager_secret_iam_member.oauth_client_secret["transfer"].id])
  depends_on   = [google_project_service.services]
}

# Each part publishes the next one (transfer-parts); the last part settles the round (reset-requests).
resource "google_pubsub_topic_iam_member" "transfer_publishes" {
  for_each = toset(["transfer", "reset"])

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = module.transfer.service_account_member
}

# Writes parts and archives, composes, deletes parts: on the archive bucket only.
resource "google_storage_bucket_iam_member" "transfer_writes_archives" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = module.transfer.service_account_member
}
