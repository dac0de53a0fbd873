variable "project_id" {
  description = "The Google Cloud project this environment owns (one project per environment)."
  type        = string
}

variable "hospitals" {
  description = <<-EOT
    Onboarded hospitals: hospital id => the IAM member its connector runs as, e.g.
    "serviceAccount:connector@hospital-project.iam.gserviceaccount.com" or a workload identity
    "principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/S".
    The id becomes the object prefix hospitals/<id>/ the connector may write under.
  EOT
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for id in keys(var.hospitals) : can(regex("^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", id))])
    error_message = "Hospital ids are 3-40 characters of a-z, 0-9 and inner dashes: they become an object prefix in an IAM condition."
  }

  validation {
    condition = alltrue([
      for member in values(var.hospitals) :
      can(regex("^(serviceAccount:[a-z0-9-]+@[a-z0-9.-]+\\.iam\\.gserviceaccount\\.com|principal://iam\\.googleapis\\.com/\\S+)$", member))
    ])
    error_message = "A hospital's connector is one service account or one workload identity principal; never a user, a group, a set (principalSet), allUsers or allAuthenticatedUsers."
  }

  validation {
    condition     = length(distinct(values(var.hospitals))) == length(values(var.hospitals))
    error_message = "Each hospital needs its own connector identity; a shared one could write under another hospital's prefix."
  }
}

variable "source_object" {
  description = "The functions' source archive in the source bucket, e.g. \"functions-<git sha>.zip\"."
  type        = string
}

variable "api_base" {
  description = "The canonical https apiBase devices and connectors call (and sign requests for), e.g. \"https://api.clinic-bridge.example\"."
  type        = string

  validation {
    condition     = can(regex("^https://[a-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*$", var.api_base))
    error_message = "api_base must be a canonical https URL without a trailing slash."
  }
}

variable "source_uploaders" {
  description = "Members (CI) that may upload source archives."
  type        = list(string)
  default     = []
}

variable "private_invokers" {
  description = "Members that may call private functions (health)."
  type        = list(string)
  default     = []
}

variable "key_custodians" {
  description = "Members given Encrypt-only on the function keys while wrapping Themis keys (bootstrap, rotation). Keep empty otherwise."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Where alerts go."
  type        = list(string)
  default     = []
}

variable "ingest_rejection_threshold" {
  description = "Rejected uploads per 15 minutes above which to alert."
  type        = number
  default     = 5
}

variable "kms_protection_level" {
  description = "SOFTWARE or HSM for every key (function keys and CMEK)."
  type        = string
}

variable "kms_rotation_period" {
  description = "Automatic rotation period of symmetric keys."
  type        = string
  default     = "7776000s"
}

variable "kms_destroy_scheduled_duration" {
  description = "Delay before a key version scheduled for destruction is destroyed."
  type        = string
}

variable "soft_delete_days" {
  description = "Soft-delete window per bucket role (ingest, records, outbox, quarantine, tlog, source): 0 or 7-90 days."
  type        = map(number)
}

variable "max_age_days" {
  description = "Lifecycle backstop per bucket role: maximum object age in days; 0 keeps the bucket's objects indefinitely (no age or expiry rule), for the transparency logs only."
  type        = map(number)
}

variable "min_instances" {
  description = "Warm instances per function."
  type        = map(number)
  default     = {}
}

variable "firestore_database" {
  description = "Firestore database id."
  type        = string
  default     = "(default)"
}

variable "firestore_point_in_time_recovery" {
  description = "Enable 7-day point-in-time recovery."
  type        = bool
}

variable "firestore_delete_protection" {
  description = "Protect the database from deletion."
  type        = bool
}

variable "firestore_backup_retention_days" {
  description = "Daily backups kept this many days (0-7)."
  type        = number
}

variable "scheduler_region" {
  description = "Cloud Scheduler region, if it must differ from the catalog's location."
  type        = string
  default     = null
}
