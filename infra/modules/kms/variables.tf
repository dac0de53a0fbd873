variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "location" {
  description = "KMS location; must match the buckets' and Firestore's location for CMEK."
  type        = string
}

variable "key_ring" {
  description = "Name of the function key ring (catalog keyRing); the CMEK ring is \"<name>-cmek\"."
  type        = string
}

variable "function_keys" {
  description = "module.catalog.function_keys: key name => { purpose, algorithm (null: the purpose's default) }."
  type        = any
}

variable "kms_grants" {
  description = "module.catalog.kms_grants: the one role each function holds on its key."
  type        = any
}

variable "function_members" {
  description = "IAM member per function (serviceAccount:...)."
  type        = map(string)
}

variable "cmek_keys" {
  description = "CMEK key name => { agent = IAM member of the service agent that uses it }."
  type        = map(object({ agent = string }))
}

variable "protection_level" {
  description = "SOFTWARE or HSM (FIPS 140-2 Level 3). HSM for anything holding real patients' data."
  type        = string

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.protection_level)
    error_message = "protection_level must be SOFTWARE or HSM."
  }
}

variable "rotation_period" {
  description = "Automatic rotation of symmetric keys (function ENCRYPT_DECRYPT keys and CMEK), e.g. \"7776000s\" (90 days). At most 90 days. Asymmetric keys get none: Cloud KMS does not rotate them."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+s$", var.rotation_period)) && tonumber(trimsuffix(var.rotation_period, "s")) >= 86400 && tonumber(trimsuffix(var.rotation_period, "s")) <= 7776000
    error_message = "rotation_period must be between 86400s (1 day) and 7776000s (90 days)."
  }
}

variable "destroy_scheduled_duration" {
  description = "How long a key version waits in DESTROY_SCHEDULED before it is gone (crypto-shredding delay)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+s$", var.destroy_scheduled_duration)) && tonumber(trimsuffix(var.destroy_scheduled_duration, "s")) >= 86400 && tonumber(trimsuffix(var.destroy_scheduled_duration, "s")) <= 10368000
    error_message = "destroy_scheduled_duration must be between 86400s (1 day) and 10368000s (120 days)."
  }
}

variable "key_custodians" {
  description = "Members given Encrypt (never Decrypt) on the function keys, to wrap new Themis keys. Empty except during bootstrap or rotation."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.key_custodians : can(regex("^(user|group|serviceAccount):[^*\\s]+@[^*\\s]+$", m))])
    error_message = "key_custodians must be user:, group: or serviceAccount: members; never allUsers, allAuthenticatedUsers or domains."
  }
}
