# One Cloud Run function (2nd gen) and the service account it runs as: the block every service_<name>.tf
# of the parent module shares. The caller grants that account what its function needs, on the narrowest
# resource (service_<name>.tf, kms.tf, secrets.tf, tasks.tf), and names in wait_for_iam the grants the
# function must not be built or started without.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.0.0, < 9.0.0"
    }
  }
}

resource "google_service_account" "this" {
  project      = var.project
  account_id   = var.account_id
  display_name = var.display_name
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime           = var.build.runtime
    entry_point       = var.entry_point
    service_account   = var.build.service_account
    docker_repository = var.build.docker_repository

    source {
      storage_source {
        bucket = var.build.bucket
        object = var.build.object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.this.email
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = var.env

    # In the order given: the provider keeps them as a list.
    dynamic "secret_environment_variables" {
      for_each = var.secret_env
      content {
        key        = secret_environment_variables.value.key
        project_id = var.project
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  # The grants name this module's account, so they cannot be in the module call's depends_on (a cycle:
  # the account would wait for grants that wait for the account). Only the function waits for them.
  depends_on = [var.wait_for_iam]
}
