variable "project_id" {
  description = "The Google Cloud project of this environment."
  type        = string
}

variable "hospitals" {
  description = "Hospital id => IAM member of its connector (see modules/stack)."
  type        = map(string)
  default     = {}
}

variable "source_object" {
  description = "Functions' source archive in the source bucket."
  type        = string
}

variable "api_base" {
  description = "The canonical https apiBase of this environment (PROTOCOL.md §4); request signatures name it."
  type        = string
}

variable "source_uploaders" {
  description = "CI identities that upload source archives."
  type        = list(string)
  default     = []
}

variable "private_invokers" {
  description = "Operators and uptime checks that may call the health function."
  type        = list(string)
  default     = []
}

variable "key_custodians" {
  description = "Encrypt-only on function keys while wrapping Themis keys; empty otherwise."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Where alerts go."
  type        = list(string)
  default     = []
}
