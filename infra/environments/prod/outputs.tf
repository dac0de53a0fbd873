output "function_urls" {
  description = "HTTPS endpoint per function."
  value       = module.clinic_bridge.function_urls
}

output "function_service_accounts" {
  description = "Service account email per function."
  value       = module.clinic_bridge.function_service_accounts
}

output "bucket_names" {
  description = "Bucket name per role."
  value       = module.clinic_bridge.bucket_names
}

output "function_key_ids" {
  description = "KMS key per function key name."
  value       = module.clinic_bridge.function_key_ids
}

output "firestore_database" {
  description = "Firestore database id."
  value       = module.clinic_bridge.firestore_database
}
