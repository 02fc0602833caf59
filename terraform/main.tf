# The Google APIs the pipeline needs (versions.tf holds the Terraform and provider versions).
#
# The module is flat, one file per concern (as exposure-notifications-server lays out its Terraform):
# source.tf builds the one source zip every function is deployed from, service_<name>.tf holds one
# function with its service account and the grants it alone needs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudtasks.googleapis.com",
    "dataportability.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  # Service agents Google creates per project; the pipeline grants them only what they act on.
  pubsub_service_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  labels = merge({ app = "portability-pipeline" }, var.labels)
}

resource "google_project_service" "services" {
  for_each = local.services

  project = var.project_id
  service = each.value

  # Other workloads in the project may use the same APIs: never switch them off on destroy.
  disable_on_destroy = false
}
