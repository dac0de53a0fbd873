# Reads infra/catalog.json, the one source of truth for each function's identity, trigger,
# KMS key and grants, and normalises it for the other modules: every optional field gets its
# least-privileged meaning here (no grant, private access), once, so no module guesses.
# The local KMS emulator derives its IAM policy from the same file
# (emulator/kms/policy.ts, policyFromCatalog), and test/infra proves both agree.

locals {
  raw = jsondecode(file("${path.module}/../../catalog.json"))

  functions = {
    for name, fn in local.raw.functions : name => {
      name            = name
      service_account = fn.serviceAccount
      trigger_type    = fn.trigger.type
      trigger_bucket  = try(fn.trigger.bucket, null)
      cron            = try(fn.trigger.cron, null)
      time_zone       = try(fn.trigger.timeZone, null)
      access          = try(fn.access, "private")
      memory_mib      = try(fn.runtime.memoryMiB, 256)
      timeout_seconds = try(fn.runtime.timeoutSeconds, 60)
      max_instances   = try(fn.runtime.maxInstances, 1)
      concurrency     = try(fn.runtime.concurrency, 1)
      firestore_role  = try(fn.firestore, null)
      project_roles   = try(fn.projectRoles, [])
      signs_urls      = try(fn.signsUrls, false)
    }
  }

  # One entry per (function, KMS grant): the key it may use and the one role it holds on it.
  # algorithm is the key's version algorithm; null means the purpose's default (modules/kms).
  kms_grants = {
    for grant in flatten([
      for name, fn in local.raw.functions : [
        for g in fn.kms : {
          function  = name
          key       = g.key
          purpose   = g.purpose
          algorithm = try(g.algorithm, null)
          role      = g.role
        }
      ]
    ]) : "${grant.function}/${grant.key}" => grant
  }

  # One entry per key. Two functions never share a key (test/infra checks the catalog), so
  # the key's purpose and algorithm come from its single grant.
  function_keys = {
    for id, grant in local.kms_grants : grant.key => {
      purpose   = grant.purpose
      algorithm = grant.algorithm
    }
  }

  # One entry per (function, bucket role, IAM role).
  storage_grants = {
    for grant in flatten([
      for name, fn in local.raw.functions : [
        for g in try(fn.storage, []) : {
          function = name
          bucket   = g.bucket
          role     = g.role
        }
      ]
    ]) : "${grant.function}/${grant.bucket}/${grant.role}" => grant
  }

  # One entry per (function, project role), the Firestore role included: that one carries an
  # IAM condition limiting it to this deployment's database.
  project_grants = {
    for grant in flatten([
      for name, fn in local.raw.functions : concat(
        [for role in try(fn.projectRoles, []) : { function = name, role = role, firestore = false }],
        try(fn.firestore, null) == null ? [] : [{ function = name, role = try(fn.firestore, null), firestore = true }],
      )
    ]) : "${grant.function}/${grant.role}" => grant
  }

  custom_roles = {
    for id, role in try(local.raw.customRoles, {}) : id => {
      title       = role.title
      description = role.description
      permissions = role.permissions
    }
  }

  buckets = {
    for role, bucket in local.raw.buckets : role => {
      suffix  = bucket.suffix
      purpose = bucket.purpose
    }
  }
}

output "location" {
  description = "Region for every regional resource (data residency: the EU)."
  value       = local.raw.location
}

output "key_ring" {
  description = "Name of the key ring that holds one KMS key per function."
  value       = local.raw.keyRing
}

output "functions" {
  description = "Functions by name, optional fields filled with their least-privileged meaning."
  value       = local.functions
}

output "kms_grants" {
  description = "Per function and key: the one role that function's account holds on that key."
  value       = local.kms_grants
}

output "function_keys" {
  description = "The per-function KMS keys, by key name, with their purpose and algorithm (null: the purpose's default)."
  value       = local.function_keys
}

output "storage_grants" {
  description = "Per function, bucket role and IAM role: what the function may do on that bucket."
  value       = local.storage_grants
}

output "project_grants" {
  description = "Per function and role: project-level grants (the Firestore one is conditioned to the database)."
  value       = local.project_grants
}

output "custom_roles" {
  description = "Custom roles by id, narrower than any predefined role that would do."
  value       = local.custom_roles
}

output "buckets" {
  description = "Bucket roles with their name suffix and purpose."
  value       = local.buckets
}
