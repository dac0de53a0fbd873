output "alert_policies" {
  description = "Alert policy ids."
  value = {
    ingest_rejections     = google_monitoring_alert_policy.ingest_rejections.id
    function_errors       = google_monitoring_alert_policy.function_errors.id
    kms_permission_denied = google_monitoring_alert_policy.kms_permission_denied.id
  }
}
