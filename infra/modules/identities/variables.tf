variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "functions" {
  description = "module.catalog.functions"
  type        = any
}

variable "custom_roles" {
  description = "module.catalog.custom_roles"
  type        = any
}

variable "project_grants" {
  description = "module.catalog.project_grants"
  type        = any
}

variable "firestore_database" {
  description = "The Firestore database id the functions' Firestore role is limited to."
  type        = string
}
