# Cloud Scheduler jobs for the catalog's scheduled functions (retention, sequencer), at the
# catalog's cron expression and time zone: the same schedule the local stack runs
# (emulator/functions/scheduler.ts). Each call carries an OIDC token for the scheduler
# identity, which holds run.invoker on these functions only (modules/functions); the
# functions' ingress admits only internal traffic, which includes Cloud Scheduler.

locals {
  scheduled = { for name, fn in var.functions : name => fn if fn.trigger_type == "schedule" }
}

resource "google_cloud_scheduler_job" "job" {
  for_each = local.scheduled

  project     = var.project_id
  region      = var.region
  name        = "cb-${each.key}"
  description = "Runs the ${each.key} function at the catalog's schedule."
  schedule    = each.value.cron
  time_zone   = each.value.time_zone

  # The function works in bounded batches and resumes, so a run cut short is finished by the
  # retry or the next run. Scheduler allows at most 30 minutes per attempt.
  attempt_deadline = "${min(each.value.timeout_seconds, 1800)}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = var.function_urls[each.key]
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode(jsonencode({ trigger = "cloud-scheduler", job = "cb-${each.key}" }))

    oidc_token {
      service_account_email = var.scheduler_email
      audience              = var.function_urls[each.key]
    }
  }
}
