# Audit logs and alerts. Cloud KMS data-access audit logs record every Decrypt/Encrypt (who,
# which key, allowed or denied), so a function reaching for another function's key leaves a
# trace and pages someone. Log-based metrics read the functions' structured JSON logs
# (Cloud Logging format, never PHI): see docs/OPERATIONS.md for the fields they rely on.

# Data-access audit logs are off by default; Admin Activity logs are always on.
resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(var.data_access_audit_services)

  project = var.project_id
  service = each.key

  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  project      = var.project_id
  display_name = "Clinic Bridge on-call (${each.key})"
  type         = "email"
  labels = {
    email_address = each.key
  }
}

locals {
  channels      = [for channel in google_monitoring_notification_channel.email : channel.id]
  service_names = join(" OR ", [for name in sort(var.function_names) : "\"${name}\""])
}

# The ingest function logs one entry per rejected upload:
#   {"severity":"WARNING","operation":"ingest.rejected","code":"<ERROR_CODE>", ...}
resource "google_logging_metric" "ingest_rejections" {
  project = var.project_id
  name    = "cb-ingest-rejections"
  filter  = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"ingest\" AND jsonPayload.operation=\"ingest.rejected\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Clinic Bridge rejected uploads"

    labels {
      key         = "code"
      value_type  = "STRING"
      description = "The rejection's stable error code."
    }
  }

  label_extractors = {
    code = "EXTRACT(jsonPayload.code)"
  }
}

resource "google_logging_metric" "function_errors" {
  project = var.project_id
  name    = "cb-function-errors"
  filter  = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${local.service_names}) AND severity>=ERROR"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Clinic Bridge function errors"

    labels {
      key        = "service"
      value_type = "STRING"
    }
  }

  label_extractors = {
    service = "EXTRACT(resource.labels.service_name)"
  }
}

# PERMISSION_DENIED (gRPC code 7) on any Cloud KMS call in the project, from the audit logs.
resource "google_logging_metric" "kms_permission_denied" {
  project = var.project_id
  name    = "cb-kms-permission-denied"
  filter  = "logName:\"cloudaudit.googleapis.com\" AND protoPayload.serviceName=\"cloudkms.googleapis.com\" AND protoPayload.status.code=7"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Clinic Bridge KMS permission denials"

    labels {
      key         = "resource"
      value_type  = "STRING"
      description = "The key or key ring the call named."
    }
  }

  label_extractors = {
    resource = "EXTRACT(protoPayload.resourceName)"
  }
}

resource "google_monitoring_alert_policy" "ingest_rejections" {
  project               = var.project_id
  display_name          = "Clinic Bridge: uploads rejected"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "More than ${var.ingest_rejection_threshold} rejected uploads in 15 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.ingest_rejections.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.ingest_rejection_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Uploads are being quarantined. Group the metric by `code` to see why; the hospital receives a rejection receipt in its outbox. See docs/OPERATIONS.md."
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  project               = var.project_id
  display_name          = "Clinic Bridge: function errors"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "Error-level log entries"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.function_errors.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
    }
  }

  conditions {
    display_name = "5xx responses"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.labels.response_code_class=\"5xx\" AND resource.labels.service_name=monitoring.regex.full_match(\"${join("|", sort(var.function_names))}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function logged an error or answered 5xx. Bad input must get a 4xx (invariant 6), so every 5xx is a bug or an outage. See docs/OPERATIONS.md."
  }
}

resource "google_monitoring_alert_policy" "kms_permission_denied" {
  project               = var.project_id
  display_name          = "Clinic Bridge: KMS permission denied"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "Any denied Cloud KMS call"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.kms_permission_denied.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.resource"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Someone or something was refused a Cloud KMS operation. Functions only ever use their own key, so a denial means a misconfiguration or an attempt to use another function's key: treat it as a security incident until explained. See docs/OPERATIONS.md, Incident response."
  }
}
