# The catalog's buckets (ingest, records, outbox, quarantine, tlog) plus the bucket that holds
# the functions' source archives. Every bucket: uniform bucket-level access (no object ACLs),
# public access prevention enforced, CMEK, versioning off (a deleted object must be gone,
# not kept as a noncurrent version), a soft-delete window chosen per bucket and environment,
# and lifecycle rules that delete whatever the retention job missed, except in a bucket whose
# objects must be kept indefinitely (max age 0: the transparency logs), where no lifecycle
# rule deletes anything.

locals {
  buckets = merge(
    {
      for role, bucket in var.buckets : role => {
        name    = "${var.project_id}-${bucket.suffix}"
        purpose = bucket.purpose
      }
    },
    {
      source = {
        name    = "${var.project_id}-functions-source"
        purpose = "function source archives uploaded by CI"
      }
    },
  )
}

resource "google_storage_bucket" "bucket" {
  for_each = local.buckets

  project       = var.project_id
  name          = each.value.name
  location      = var.location
  storage_class = "STANDARD"

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Deleting a bucket that still holds objects must be a deliberate act, not a side effect.
  force_destroy = false

  versioning {
    enabled = false
  }

  encryption {
    default_kms_key_name = var.cmek_key_ids["bucket-${each.key}"]
  }

  # 0 turns soft delete off: a deleted object is gone at once. Otherwise deleted objects stay
  # restorable (and billed) for this long, a guard against a faulty retention run or a
  # mistaken delete. Either way it is stated in docs/OPERATIONS.md, because it is how long
  # "deleted" ciphertext still exists.
  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days[each.key] * 86400
  }

  # Backstop 1: nothing outlives the bucket's maximum age, whatever the application does.
  # A max age of 0 means the bucket's objects are kept indefinitely (the transparency logs'
  # tiles and checkpoints must outlive every proof anyone checks against them): no rule.
  dynamic "lifecycle_rule" {
    for_each = var.max_age_days[each.key] > 0 ? [var.max_age_days[each.key]] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Backstop 2: the functions set an object's customTime to its expiry, so an object is
  # deleted a day after it expires even if the retention job never ran. Nothing in a bucket
  # kept indefinitely expires, so there a customTime set by mistake deletes nothing either.
  dynamic "lifecycle_rule" {
    for_each = var.max_age_days[each.key] > 0 ? [1] : []
    content {
      condition {
        days_since_custom_time = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Abandoned multipart uploads hold bytes nobody can see; drop them after a day.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  labels = {
    app         = "clinic-bridge"
    bucket-role = each.key
  }
}
