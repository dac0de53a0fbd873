variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "location" {
  description = "Firestore location (a region, same as its CMEK key)."
  type        = string
}

variable "database" {
  description = "Database id; \"(default)\" unless the project already has an unencrypted default database."
  type        = string
}

variable "cmek_key_id" {
  description = "CMEK key (from module.kms.cmek_ready, so the Firestore agent may use it first)."
  type        = string
}

variable "indexes" {
  description = "jsondecode of firestore.indexes.json: composite indexes and fieldOverrides (TTL)."
  type        = any
}

variable "rules" {
  description = "Contents of firestore.rules (deny all client access)."
  type        = string
}

variable "point_in_time_recovery" {
  description = "Keep 7 days of versions for point-in-time recovery (also delays final deletion by 7 days)."
  type        = bool
}

variable "delete_protection" {
  description = "Refuse to delete the database (and abandon it on terraform destroy)."
  type        = bool
}

variable "backup_retention_days" {
  description = "Daily backups kept this many days; 0 for none. At most 7 for daily backups."
  type        = number

  validation {
    condition     = var.backup_retention_days >= 0 && var.backup_retention_days <= 7
    error_message = "Daily backups are kept at most 7 days; 0 disables them."
  }
}
