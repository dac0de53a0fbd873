variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "function_names" {
  description = "The catalog's function names (their Cloud Run service names)."
  type        = list(string)
}

variable "alert_emails" {
  description = "Email addresses that receive alerts."
  type        = list(string)
  default     = []
}

variable "ingest_rejection_threshold" {
  description = "Rejected uploads per 15 minutes above which to alert."
  type        = number
  default     = 5
}

variable "data_access_audit_services" {
  description = "Services whose data-access audit logs are enabled; must include cloudkms.googleapis.com."
  type        = list(string)
  default     = ["cloudkms.googleapis.com"]

  validation {
    condition     = contains(var.data_access_audit_services, "cloudkms.googleapis.com")
    error_message = "KMS data-access audit logs are required (invariant 4 is audited through them)."
  }
}
