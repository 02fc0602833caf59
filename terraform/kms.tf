# Envelope encryption of the users' OAuth tokens (Tink AEAD with a KMS key: TOKEN_KEY_URI).

resource "google_kms_key_ring" "pipeline" {
  project  = var.project_id
  name     = var.key_ring_name
  location = coalesce(var.kms_location, var.region)

  depends_on = [google_project_service.services]
}

resource "google_kms_crypto_key" "tokens" {
  name            = "token-encryption"
  key_ring        = google_kms_key_ring.pipeline.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = var.token_key_rotation_period
  labels          = local.labels

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = "SOFTWARE"
  }

  # Destroying the key makes every stored token unreadable: every user would have to consent again.
  lifecycle {
    prevent_destroy = true
  }
}

locals {
  # Functions that read or write tokens (refreshing needs the token; Transfer needs fresh signed URLs).
  token_users = { for k, f in local.functions : k => local.function_members[k] if f.token_key }
}

# On the key, not the key ring or the project.
resource "google_kms_crypto_key_iam_member" "token_users" {
  for_each = local.token_users

  crypto_key_id = google_kms_crypto_key.tokens.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}
