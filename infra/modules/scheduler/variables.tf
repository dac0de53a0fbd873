variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

variable "region" {
  description = "Cloud Scheduler region."
  type        = string
}

variable "functions" {
  description = "module.catalog.functions"
  type        = any
}

variable "function_urls" {
  description = "HTTPS endpoint per function."
  type        = map(string)
}

variable "scheduler_email" {
  description = "Identity the jobs' OIDC tokens are minted for."
  type        = string
}
