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
# also avoids write hotspots on monotonically growing timestamps. OAuth states expire with their flow;
# used start and status links (single use) are kept until the link's own expiry, then removed.
locals {
  ttl_collections = {
    oauth_states = "oauthStates"
    used_links   = "usedLinks"
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_collections

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = each.value
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}

# Retention of rounds: not TTL. TTL deletes only the document that carries the timestamp, never its
# sub-collections (resources/objects/parts), so the reconciler deletes each closed round older than
# round_retention_days with everything below it (the rounds/state+closedAt index below finds them).

# --- Composite indexes, by key: a collection, its scope and the fields in order ([path, order] each).
locals {
  # The reconciler's deadline queries (functions/reconcile/rules.go): an equality on state and a range on
  # one timestamp each. Resources across rounds (collection group), and rounds (collection); (state,
  # claimedAt) of resources is resources_state_claimed_at below: initiating and retrying claims.
  reconcile_resource_indexes = {
    updated_at     = "updatedAt"    # pending (initiate lost), transferring (parts lost)
    not_before     = "notBefore"    # cooldown over, its task lost
    poll_due       = "pollDue"      # exporting past its next state check (poll chain lost)
    job_started_at = "jobStartedAt" # exporting longer than MAX_JOB_AGE
  }
  reconcile_round_indexes = {
    created_at   = "createdAt"   # exporting rounds; the oldest open round (state in [...])
    not_before   = "notBefore"   # scheduled rounds past their start
    completed_at = "completedAt" # complete rounds whose reset never ran
    closed_at    = "closedAt"    # closed rounds past retention
  }

  firestore_indexes = merge(
    {
      # Stale claims: resources of any round in a state, oldest claim first (crash recovery of initiations).
      resources_state_claimed_at = {
        collection = "resources"
        scope      = "COLLECTION_GROUP"
        fields     = [["state", "ASCENDING"], ["claimedAt", "ASCENDING"]]
      }
      # A user's rounds, newest first.
      rounds_user_number = {
        collection = "rounds"
        scope      = "COLLECTION"
        fields     = [["user", "ASCENDING"], ["number", "DESCENDING"]]
      }
      # Events recorded but not published (the outbox's stragglers), oldest first.
      events_unpublished = {
        collection = "events"
        scope      = "COLLECTION"
        fields     = [["published", "ASCENDING"], ["occurredAt", "ASCENDING"]]
      }
    },
    { for k, field in local.reconcile_resource_indexes : "reconcile_resources_${k}" => {
      collection = "resources"
      scope      = "COLLECTION_GROUP"
      fields     = [["state", "ASCENDING"], [field, "ASCENDING"]]
    } },
    { for k, field in local.reconcile_round_indexes : "reconcile_rounds_${k}" => {
      collection = "rounds"
      scope      = "COLLECTION"
      fields     = [["state", "ASCENDING"], [field, "ASCENDING"]]
    } },
  )
}

resource "google_firestore_index" "index" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = each.value.collection
  query_scope = each.value.scope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}
