output "urls" {
  description = "HTTPS endpoint per function."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.url }
}

output "service_names" {
  description = "Cloud Run service per function (gen2 functions run as Cloud Run services)."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.name }
}
