variable "project_id" {
  description = "The project this environment owns; bucket names are \"<project>-<suffix>\"."
  type        = string
}

variable "location" {
  description = "Bucket location (a region, same as the CMEK keys)."
  type        = string
}

variable "buckets" {
  description = "module.catalog.buckets"
  type        = any
}

variable "cmek_key_ids" {
  description = "CMEK key per \"bucket-<role>\" (from module.kms.cmek_ready, so keys are usable first)."
  type        = map(string)
}

variable "soft_delete_days" {
  description = "Soft-delete window per bucket role, in days: 0 (off) or 7 to 90. How long a deleted object can still be restored."
  type        = map(number)

  validation {
    condition     = alltrue([for days in values(var.soft_delete_days) : days == 0 || (days >= 7 && days <= 90)])
    error_message = "Each soft-delete window must be 0 (off) or between 7 and 90 days."
  }
}

variable "max_age_days" {
  description = "Lifecycle backstop per bucket role, in days: objects older than this are deleted, and objects a day past their customTime (their expiry). 0 means kept indefinitely: no age backstop and no expiry rule, only for what must never age out (the transparency logs)."
  type        = map(number)

  validation {
    condition     = alltrue([for days in values(var.max_age_days) : days >= 0 && floor(days) == days])
    error_message = "Each max age must be a whole number of days: at least one, or 0 for kept indefinitely."
  }
}

variable "storage_grants" {
  description = "module.catalog.storage_grants"
  type        = any
}

variable "function_members" {
  description = "IAM member per function (serviceAccount:...)."
  type        = map(string)
}

variable "role_names" {
  description = "Full role name per catalog reference \"custom:<id>\"."
  type        = map(string)
}

variable "hospitals" {
  description = "Hospital id => the IAM member its connector runs as (a service account or a workload identity principal)."
  type        = map(string)
}

variable "build_member" {
  description = "IAM member of the build identity (reads source archives)."
  type        = string
}

variable "source_uploaders" {
  description = "Members (CI) that upload function source archives."
  type        = list(string)
  default     = []
}
