# Firestore (native mode): the state of every user, round, resource, object and part (docs/design.md).
# The emulator never asks for composite indexes, production does: keep these in step with the queries.

resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = "(default)"
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.firestore_delete_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.services]
}

# Stale claims: resources of any round in a state, oldest claim first (crash recovery of initiations).
resource "google_firestore_index" "resources_state_claimed_at" {
  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = "resources"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "claimedAt"
    order      = "ASCENDING"
  }
}

# A user's rounds, newest first.
resource "google_firestore_index" "rounds_user_number" {
  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = "rounds"
  query_scope = "COLLECTION"

  fields {
    field_path = "user"
    order      = "ASCENDING"
  }
  fields {
    field_path = "number"
    order      = "DESCENDING"
  }
}

# Parts by state, also across objects (collection group). A one-field query needs no composite index
# (Firestore refuses one); a collection-group query needs this single-field override. The default
# collection-scope indexes are restated because an override replaces them.
resource "google_firestore_field" "parts_state" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "parts"
  field      = "state"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
    indexes {
      order       = "DESCENDING"
      query_scope = "COLLECTION"
    }
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }
}

# TTL: Firestore deletes a document some time (up to a day or more) after the timestamp in this field.
# The fields are never queried, so their single-field indexes are switched off (index_config {}), which
# also avoids write hotspots on monotonically growing timestamps.
resource "google_firestore_field" "oauth_states_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "oauthStates"
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}

# Used start and status links (single use) are kept until the link's own expiry, then removed.
resource "google_firestore_field" "used_links_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "usedLinks"
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}

# Closed rounds expire when the code sets rounds/{round}.expireAt. TTL deletes only that document, not its
# subcollections (resources/objects/parts): those need their own expireAt or a sweep.
resource "google_firestore_field" "rounds_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "rounds"
  field      = "expireAt"

  ttl_config {}
  index_config {}
}
