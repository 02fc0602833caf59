# The archive bucket: where Transfer writes every exported archive (OBJECT_PREFIX/...) and its parts
# (tmp/...). It holds personal data: never public, one access model (IAM), deletion by policy.

data "google_storage_project_service_account" "gcs" {
  count   = var.archive_kms_key_id == null ? 0 : 1
  project = var.project_id
}

# Optional CMEK: the Cloud Storage service agent encrypts with the operator's key (on that key only).
resource "google_kms_crypto_key_iam_member" "gcs_uses_archive_key" {
  count         = var.archive_kms_key_id == null ? 0 : 1
  crypto_key_id = var.archive_kms_key_id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = data.google_storage_project_service_account.gcs[0].member
}

# CMEK is optional (variable archive_kms_key_id); without it Google-managed keys encrypt the archives.
resource "google_storage_bucket" "archive" {
  project  = var.project_id
  name     = var.bucket_name
  location = coalesce(var.bucket_location, var.region)
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = var.archive_versioning
  }

  dynamic "retention_policy" {
    for_each = var.archive_min_retention_days > 0 ? [1] : []
    content {
      retention_period = var.archive_min_retention_days * 86400
      is_locked        = false
    }
  }

  dynamic "encryption" {
    for_each = var.archive_kms_key_id == null ? [] : [var.archive_kms_key_id]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Old rounds: delete archives some days after they were written.
  dynamic "lifecycle_rule" {
    for_each = var.archive_retention_days > 0 ? [1] : []
    content {
      condition {
        age            = var.archive_retention_days
        matches_prefix = ["${var.object_prefix}/"]
      }
      action {
        type = "Delete"
      }
    }
  }

  # Part objects are composed into the archive and deleted by Transfer; leftovers of a crash go after a day.
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = ["tmp/"]
    }
    action {
      type = "Delete"
    }
  }

  # Multipart (XML API) uploads that were never completed.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.archive_versioning ? [1] : []
    content {
      condition {
        days_since_noncurrent_time = var.noncurrent_version_days
        with_state                 = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [
    google_project_service.services,
    google_kms_crypto_key_iam_member.gcs_uses_archive_key,
  ]
}
