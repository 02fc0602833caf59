# A root that deploys the pipeline with the defaults. Before apply: create the two secrets and the OAuth
# web client (../../README.md). Keep state in a remote backend in real use (e.g. a gcs backend block).

terraform {
  required_version = ">= 1.7.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.0.0, < 9.0.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "pipeline" {
  source = "../.."

  project_id      = var.project_id
  region          = var.region
  oauth_client_id = var.oauth_client_id
  bucket_name     = "${var.project_id}-portability-archives"

  # Delete archives 90 days after export; the account holder has been told to fetch them by then.
  archive_retention_days = 90

  # Every alert mails these addresses.
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
}

# The alerts' e-mail channels. The module enables the monitoring API too, but the channels are created
# before the module (the module needs their IDs), so this root enables it for them; neither ever disables it.
resource "google_project_service" "monitoring" {
  project            = var.project_id
  service            = "monitoring.googleapis.com"
  disable_on_destroy = false
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  project      = var.project_id
  display_name = "Portability pipeline alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.monitoring]
}
