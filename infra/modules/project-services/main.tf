# The Google APIs Clinic Bridge uses, and nothing else: every enabled API is attack surface
# and a place data could go.

variable "project_id" {
  description = "The project this environment owns."
  type        = string
}

locals {
  services = toset([
    "artifactregistry.googleapis.com", # function images
    "cloudbuild.googleapis.com",       # builds function images from source
    "cloudfunctions.googleapis.com",   # Cloud Functions gen2
    "cloudkms.googleapis.com",         # per-function keys and CMEK
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com", # retention schedule
    "eventarc.googleapis.com",       # ingest bucket -> ingest function
    "fcm.googleapis.com",            # push hints (no PHI)
    "firebaserules.googleapis.com",  # firestore.rules (deny all clients)
    "firestore.googleapis.com",      # metadata
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signBlob for signed URLs, OIDC tokens
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com", # Eventarc's transport for storage events
    "run.googleapis.com",    # gen2 functions run on Cloud Run
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "service" {
  for_each = local.services

  project = var.project_id
  service = each.key

  # Disabling an API on destroy would break anything else in the project that uses it, and
  # would not delete data anyway; turn APIs off by hand if the project is being retired.
  disable_on_destroy         = false
  disable_dependent_services = false
}

output "services" {
  description = "The enabled services, for depends_on."
  value       = [for s in google_project_service.service : s.service]
}
