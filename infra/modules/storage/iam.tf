# Authoritative IAM policy on every bucket. Besides listing exactly who holds what, it removes
# the convenience bindings Google adds to new buckets (project viewers may read objects,
# project editors may write them): nobody reaches patient ciphertext by holding a broad
# project role. Operators manage buckets through project-level storage admin, which this
# does not touch.
#
# Grants come from three places:
#   - the catalog: each function's role on each bucket;
#   - var.hospitals: each hospital's connector may create objects under
#     hospitals/<id>/ in the ingest bucket, and read (by name, no listing) its own receipts
#     in the outbox and its own rejected uploads in quarantine, each through an IAM condition;
#   - the source bucket: the build identity reads archives, CI uploads them.

locals {
  # What a hospital's connector may do on each bucket, always only under its own prefix.
  hospital_access = {
    ingest     = "roles/storage.objectCreator"
    outbox     = "custom:cbObjectReader"
    quarantine = "custom:cbObjectReader"
  }

  # bucket role => IAM role => [members], from the catalog.
  function_bindings = {
    for bucket in keys(local.buckets) : bucket => {
      for id, grant in var.storage_grants :
      lookup(var.role_names, grant.role, grant.role) => var.function_members[grant.function]...
      if grant.bucket == bucket
    }
  }

  # The source bucket is not in the catalog: builds read archives, CI uploads them.
  bucket_bindings = merge(local.function_bindings, {
    source = merge(
      { "roles/storage.objectViewer" = [var.build_member] },
      length(var.source_uploaders) > 0 ? { "roles/storage.objectCreator" = var.source_uploaders } : {},
    )
  })

  # bucket role => [{ hospital, member, role }]
  hospital_bindings = {
    for bucket in keys(local.buckets) : bucket => [
      for id in sort(keys(var.hospitals)) : {
        hospital = id
        member   = var.hospitals[id]
        role     = lookup(var.role_names, local.hospital_access[bucket], local.hospital_access[bucket])
      }
    ] if contains(keys(local.hospital_access), bucket)
  }
}

data "google_iam_policy" "bucket" {
  for_each = local.buckets

  dynamic "binding" {
    for_each = local.bucket_bindings[each.key]
    content {
      role    = binding.key
      members = sort(distinct(binding.value))
    }
  }

  dynamic "binding" {
    for_each = lookup(local.hospital_bindings, each.key, [])
    content {
      role    = binding.value.role
      members = [binding.value.member]

      condition {
        title       = "hospital-${binding.value.hospital}"
        description = "Only objects under this hospital's own prefix."
        expression  = "resource.name.startsWith(\"projects/_/buckets/${each.value.name}/objects/hospitals/${binding.value.hospital}/\")"
      }
    }
  }
}

resource "google_storage_bucket_iam_policy" "bucket" {
  for_each = local.buckets

  bucket      = google_storage_bucket.bucket[each.key].name
  policy_data = data.google_iam_policy.bucket[each.key].policy_data
}
