variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "location" {
  description = "Region of the functions, their trigger and image repository."
  type        = string
}

variable "functions" {
  description = "module.catalog.functions"
  type        = any
}

variable "function_emails" {
  description = "Service account email per function."
  type        = map(string)
}

variable "event_trigger_email" {
  description = "Identity Eventarc invokes storage-triggered functions with."
  type        = string
}

variable "scheduler_email" {
  description = "Identity Cloud Scheduler invokes scheduled functions with."
  type        = string
}

variable "build_email" {
  description = "Identity function builds run as."
  type        = string
}

variable "build_service_account_id" {
  description = "Resource id of the build identity."
  type        = string
}

variable "bucket_names" {
  description = "Bucket name per role (catalog roles plus \"source\")."
  type        = map(string)
}

variable "app_bucket_roles" {
  description = "The catalog's bucket roles; each becomes <ROLE>_BUCKET in every function's environment."
  type        = list(string)
}

variable "firestore_database" {
  description = "The Firestore database id (FIRESTORE_DATABASE)."
  type        = string
}

variable "source_object" {
  description = "Object in the source bucket holding the built functions (zip), e.g. \"functions-<git sha>.zip\"."
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

variable "min_instances" {
  description = "Minimum warm instances per function name (absent: 0). Warm instances skip the cold start's KMS unwrap and Themis load."
  type        = map(number)
  default     = {}
}

variable "private_invokers" {
  description = "Members that may invoke private functions (health): operators' group, an uptime-check account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.private_invokers : can(regex("^(user|group|serviceAccount):[^*\\s]+@[^*\\s]+$", m))])
    error_message = "private_invokers must be user:, group: or serviceAccount: members, never allUsers or allAuthenticatedUsers."
  }
}
