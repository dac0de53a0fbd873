output "function_emails" {
  description = "Service account email per function."
  value       = { for name, sa in google_service_account.function : name => sa.email }
}

output "function_members" {
  description = "IAM member string (serviceAccount:...) per function."
  value       = { for name, sa in google_service_account.function : name => sa.member }
}

output "function_ids" {
  description = "Service account resource id per function (projects/-/serviceAccounts/...)."
  value       = { for name, sa in google_service_account.function : name => sa.id }
}

output "event_trigger_email" {
  description = "Identity Eventarc invokes storage-triggered functions with."
  value       = google_service_account.event_trigger.email
}

output "scheduler_email" {
  description = "Identity Cloud Scheduler invokes scheduled functions with."
  value       = google_service_account.scheduler.email
}

output "build_email" {
  description = "Identity function builds run as."
  value       = google_service_account.build.email
}

output "build_id" {
  description = "Resource id of the build identity, as build_config.service_account wants it."
  value       = google_service_account.build.id
}

output "role_names" {
  description = "Full role name per catalog reference \"custom:<id>\"."
  value       = local.role_names
}

output "gcs_agent_email" {
  description = "Cloud Storage service agent (encrypts buckets with their CMEK key)."
  value       = data.google_storage_project_service_account.gcs.email_address
}

output "firestore_agent_email" {
  description = "Firestore service agent (encrypts the database with its CMEK key)."
  value       = "service-${data.google_project.this.number}@gcp-sa-firestore.iam.gserviceaccount.com"
}
