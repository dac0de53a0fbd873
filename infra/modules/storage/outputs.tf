output "bucket_names" {
  description = "Bucket name per role (catalog roles plus \"source\")."
  value       = { for role, bucket in google_storage_bucket.bucket : role => bucket.name }
}
