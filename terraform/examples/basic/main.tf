# A root that deploys the pipeline with the defaults. Before apply: create the two secrets and the OAuth
# web client (../../README.md). Keep state in a remote backend in real use (e.g. a gcs backend block).

terraform {
  required_version = ">= 1.5.0"

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
}
