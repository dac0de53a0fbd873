# Development: synthetic data only. Cheap and quick to tear down, but with the same
# identities, grants and hardening as production: least privilege is not a prod-only setting.

provider "google" {
  project = var.project_id
  region  = "europe-west4"

  default_labels = {
    app         = "clinic-bridge"
    environment = "dev"
  }
}

module "clinic_bridge" {
  source = "../../modules/stack"

  project_id       = var.project_id
  hospitals        = var.hospitals
  source_object    = var.source_object
  api_base         = var.api_base
  source_uploaders = var.source_uploaders
  private_invokers = var.private_invokers
  key_custodians   = var.key_custodians
  alert_emails     = var.alert_emails

  # Software keys: same API and IAM as HSM at a fraction of the cost.
  kms_protection_level = "SOFTWARE"
  kms_rotation_period  = "7776000s" # 90 days
  # A destroyed dev key is gone after a day: test data needs no grace period.
  kms_destroy_scheduled_duration = "86400s"

  # No soft delete: dev holds no data worth restoring, and a delete should be a delete.
  soft_delete_days = {
    ingest     = 0
    records    = 0
    outbox     = 0
    quarantine = 0
    tlog       = 0
    source     = 0
  }

  # Backstops well below production's, so forgotten test data disappears quickly. Except tlog
  # (0: kept indefinitely, as in prod): a log that lost its old tiles fails every proof about
  # the entries in them, and dev runs the same log, proofs and witnesses as prod.
  max_age_days = {
    ingest     = 2
    records    = 30
    outbox     = 30
    quarantine = 7
    tlog       = 0
    source     = 30
  }

  # Cold starts are acceptable in dev.
  min_instances = {}

  firestore_point_in_time_recovery = false
  firestore_delete_protection      = false
  firestore_backup_retention_days  = 0
}
