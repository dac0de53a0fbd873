# One Cloud Functions (gen2) function per catalog entry, on nodejs22, running as its own
# service account, built by the build identity from one source archive (entry point = the
# function's name, as registerFunction in shared/runtime/function.ts names its target).
#
# Who may invoke (catalog "access"):
#   public   - anyone: devices and connectors have no Google identity, so these functions
#              authenticate every request themselves (device signatures, hospital keys,
#              one-time tokens); ingress ALLOW_ALL, run.invoker for allUsers.
#   private  - only var.private_invokers (operators, uptime checks); ingress ALLOW_ALL.
#   internal - only the trigger's identity (Eventarc or Cloud Scheduler, which Cloud Run
#              counts as internal traffic); ingress ALLOW_INTERNAL_ONLY.

locals {
  ingress = {
    public   = "ALLOW_ALL"
    private  = "ALLOW_ALL"
    internal = "ALLOW_INTERNAL_ONLY"
  }

  # Variables every function reads (shared/runtime/function.ts, emulator/stack.ts).
  common_env = merge(
    {
      GOOGLE_CLOUD_PROJECT = var.project_id
      FIRESTORE_DATABASE   = var.firestore_database
      NODE_ENV             = "production"
      # The apiBase devices and connectors sign requests for (the audience line, PROTOCOL §8).
      CB_API_BASE = var.api_base
    },
    { for role in var.app_bucket_roles : "${upper(role)}_BUCKET" => var.bucket_names[role] },
  )

  invokers = merge(
    {
      for name, fn in var.functions : "${name}/public" => { function = name, member = "allUsers" }
      if fn.access == "public"
    },
    {
      for pair in setproduct(sort([for name, fn in var.functions : name if fn.access == "private"]), sort(var.private_invokers)) :
      "${pair[0]}/${pair[1]}" => { function = pair[0], member = pair[1] }
    },
    {
      for name, fn in var.functions : "${name}/events" => { function = name, member = "serviceAccount:${var.event_trigger_email}" }
      if fn.access == "internal" && fn.trigger_type == "storage.finalized"
    },
    {
      for name, fn in var.functions : "${name}/scheduler" => { function = name, member = "serviceAccount:${var.scheduler_email}" }
      if fn.access == "internal" && fn.trigger_type == "schedule"
    },
  )
}

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.location
  repository_id = "cb-functions"
  format        = "DOCKER"
  description   = "Clinic Bridge function images (code only, no data)."
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = var.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${var.build_email}"
}

resource "google_cloudfunctions2_function" "function" {
  for_each = var.functions

  project     = var.project_id
  name        = each.key
  location    = var.location
  description = "Clinic Bridge ${each.key} (${each.value.trigger_type}, ${each.value.access})"

  build_config {
    runtime           = "nodejs22"
    entry_point       = each.key
    service_account   = var.build_service_account_id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = var.bucket_names["source"]
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email            = var.function_emails[each.key]
    ingress_settings                 = local.ingress[each.value.access]
    min_instance_count               = lookup(var.min_instances, each.key, 0)
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    available_memory                 = "${each.value.memory_mib}Mi"
    timeout_seconds                  = each.value.timeout_seconds
    all_traffic_on_latest_revision   = true

    environment_variables = merge(local.common_env, {
      SERVICE_ACCOUNT_EMAIL = var.function_emails[each.key]
      FUNCTION_NAME         = each.key
    })
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger_type == "storage.finalized" ? [each.value.trigger_bucket] : []
    content {
      trigger_region        = var.location
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = var.event_trigger_email

      event_filters {
        attribute = "bucket"
        value     = var.bucket_names[event_trigger.value]
      }
    }
  }

  labels = {
    app      = "clinic-bridge"
    function = each.key
    access   = each.value.access
  }
}

resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project_id
  location = var.location
  service  = google_cloudfunctions2_function.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}
