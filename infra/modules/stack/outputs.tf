output "function_urls" {
  description = "HTTPS endpoint per function (public ones go into the QR code's API base and the connector's config)."
  value       = module.functions.urls
}

output "function_service_accounts" {
  description = "Service account email per function."
  value       = module.identities.function_emails
}

output "bucket_names" {
  description = "Bucket name per role."
  value       = module.storage.bucket_names
}

output "function_key_ids" {
  description = "KMS key per function key name (the key the Themis key is wrapped with)."
  value       = module.kms.function_key_ids
}

output "firestore_database" {
  description = "Firestore database id."
  value       = module.firestore.database
}
