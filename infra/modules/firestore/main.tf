# The Firestore database (metadata only: records' ciphertext lives in Cloud Storage), its
# CMEK, TTL policies and composite indexes. Indexes and TTL fields are read from
# firestore.indexes.json at the repository root, the same file the Firebase CLI reads, so the
# code's query shapes have one source.
#
# Clients never reach this database: firestore.rules denies all client access, and the
# functions' service accounts (which bypass rules) hold the only data roles, each limited to
# this database by an IAM condition (modules/identities).

locals {
  composite_indexes = {
    for index in try(var.indexes.indexes, []) :
    "${index.collectionGroup}:${join(",", [for f in index.fields : "${f.fieldPath}:${try(f.order, "CONTAINS")}"])}" => index
  }

  # TTL policies: the fieldOverrides marked "ttl": true. Firestore deletes a document within
  # about a day after the timestamp in that field: a backstop to the retention job, which
  # deletes on schedule and writes a signed receipt.
  ttl_fields = {
    for field in try(var.indexes.fieldOverrides, []) :
    "${field.collectionGroup}/${field.fieldPath}" => field if try(field.ttl, false)
  }
}

resource "google_firestore_database" "db" {
  project     = var.project_id
  name        = var.database
  location_id = var.location
  type        = "FIRESTORE_NATIVE"

  # Transactions lock what they read: an invitation is consumed exactly once.
  concurrency_mode            = "PESSIMISTIC"
  app_engine_integration_mode = "DISABLED"

  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.delete_protection ? "ABANDON" : "DELETE"

  cmek_config {
    kms_key_name = var.cmek_key_id
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_fields

  project    = var.project_id
  database   = google_firestore_database.db.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  ttl_config {}

  # When the override lists the field's single-field indexes, keep exactly those (the
  # retention job's expiresAt range scan needs the ascending one); otherwise inherit.
  dynamic "index_config" {
    for_each = can(each.value.indexes) ? [each.value.indexes] : []
    content {
      dynamic "indexes" {
        for_each = index_config.value
        content {
          order        = try(indexes.value.order, null)
          array_config = try(indexes.value.arrayConfig, null)
          query_scope  = try(indexes.value.queryScope, "COLLECTION")
        }
      }
    }
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  project     = var.project_id
  database    = google_firestore_database.db.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

# firestore.rules, which denies every client read and write (the functions use IAM and are
# not subject to rules). Released explicitly so the database never runs with default rules.
resource "google_firebaserules_ruleset" "firestore" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = var.rules
    }
  }
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = var.database == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.database}"
  ruleset_name = google_firebaserules_ruleset.firestore.name

  depends_on = [google_firestore_database.db]
}

# Daily backups, kept var.backup_retention_days. A backup holds documents deleted after it
# was taken, so deletion is final only once the last backup holding a document has expired
# (docs/OPERATIONS.md, "Backups and deletion").
resource "google_firestore_backup_schedule" "daily" {
  count = var.backup_retention_days > 0 ? 1 : 0

  project   = var.project_id
  database  = google_firestore_database.db.name
  retention = "${var.backup_retention_days * 86400}s"

  daily_recurrence {}
}
