output "function_key_ids" {
  description = "Function key resource name per key."
  value       = { for name, key in google_kms_crypto_key.function : name => key.id }
}

output "cmek_key_ids" {
  description = "CMEK key resource name per key."
  value       = { for name, key in google_kms_crypto_key.cmek : name => key.id }
}

# Buckets and the database must not be created before their service agent may use the key,
# or creation fails; consumers depend on this output to order themselves after the policies.
output "cmek_ready" {
  description = "CMEK key resource name per key, available once its IAM policy is applied."
  value       = { for name, policy in google_kms_crypto_key_iam_policy.cmek : name => policy.crypto_key_id }
}
