# Who is who. One service account per function (from the catalog), one identity per trigger
# (Eventarc and Cloud Scheduler each get their own, so no function can invoke another), one
# for builds. Then the project-level grants the catalog lists, and nothing else: no primitive
# roles, no project-wide storage or KMS roles (those live on the bucket or the key).

data "google_project" "this" {
  project_id = var.project_id
}

# Reading this also makes Cloud Storage create its service agent if it does not exist yet.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_service_account" "function" {
  for_each = var.functions

  project      = var.project_id
  account_id   = each.value.service_account
  display_name = "Clinic Bridge ${each.key} function"
  description  = "Runs only the ${each.key} function; its grants are listed in infra/catalog.json."
}

# Delivers the ingest bucket's finalize events to the ingest function, and only that.
resource "google_service_account" "event_trigger" {
  project      = var.project_id
  account_id   = "cb-events"
  display_name = "Clinic Bridge Eventarc trigger"
  description  = "Identity Eventarc uses to invoke storage-triggered functions."
}

# Calls the scheduled functions on their schedules with an OIDC token, and only that.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "cb-scheduler"
  display_name = "Clinic Bridge Cloud Scheduler"
  description  = "Identity Cloud Scheduler uses to invoke scheduled functions."
}

# Builds function images instead of the default compute account (which may hold Editor).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "cb-build"
  display_name = "Clinic Bridge function builds"
  description  = "Cloud Build identity for function images: reads the source bucket, writes the image repository, writes build logs."
}

resource "google_project_iam_custom_role" "role" {
  for_each = var.custom_roles

  project     = var.project_id
  role_id     = each.key
  title       = each.value.title
  description = each.value.description
  permissions = each.value.permissions
  stage       = "GA"
}

locals {
  # "custom:<id>" in the catalog names one of the custom roles above; anything else is a
  # predefined role and passes through unchanged.
  role_names = { for id, role in google_project_iam_custom_role.role : "custom:${id}" => role.name }

  database_resource = "projects/${var.project_id}/databases/${var.firestore_database}"
}

# Project-level grants from the catalog. Firestore's role is conditioned to this deployment's
# database, so a second database in the project is out of reach.
resource "google_project_iam_member" "function" {
  for_each = var.project_grants

  project = var.project_id
  role    = lookup(local.role_names, each.value.role, each.value.role)
  member  = google_service_account.function[each.value.function].member

  dynamic "condition" {
    for_each = each.value.firestore ? [local.database_resource] : []
    content {
      title       = "only-${var.firestore_database == "(default)" ? "default" : var.firestore_database}-database"
      description = "Limits the grant to the Clinic Bridge Firestore database."
      expression  = "resource.name == \"${condition.value}\""
    }
  }
}

# V4 signed URLs are signed through the IAM signBlob API as the function itself: the
# function may act as itself, never as any other account.
resource "google_service_account_iam_member" "self_signer" {
  for_each = { for name, fn in var.functions : name => fn if fn.signs_urls }

  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.event_trigger.member
}

# Cloud Storage publishes object events to Pub/Sub for Eventarc.
resource "google_project_iam_member" "gcs_agent_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}
