# Production: real patients. Every difference from dev is deliberate and explained here;
# docs/OPERATIONS.md says what each implies for recovery and for deletion.

provider "google" {
  project = var.project_id
  region  = "europe-west4"

  default_labels = {
    app         = "clinic-bridge"
    environment = "prod"
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

  # Key material never leaves FIPS 140-2 Level 3 hardware.
  kms_protection_level = "HSM"
  kms_rotation_period  = "7776000s" # 90 days
  # 30 days between scheduling a key version's destruction and losing it: long enough to
  # notice and cancel a mistake, short enough that crypto-shredding completes within a month.
  kms_destroy_scheduled_duration = "2592000s"

  # Soft delete, chosen per bucket:
  #   records, outbox: 7 days (the minimum GCS allows when on). A faulty retention run or a
  #     mistaken delete can be undone for a week. The price: a deleted record's ciphertext
  #     lingers 7 days, stated in deletion receipts' documentation. It stays unreadable
  #     without the patient's device keys, which the platform never holds.
  #   ingest, quarantine: off. Uploads are transient copies the connector can resend;
  #     keeping them would double how long every upload exists.
  #   tlog: 7 days. Nothing in the transparency logs is deleted on purpose, so a delete there
  #     is a mistake and must be undoable. Each checkpoint the sequencer replaces is kept
  #     for the week too (one small object a minute); the logs hold hashes and counts only,
  #     so that costs no privacy.
  #   source: 7 days, to recover a deleted release archive.
  soft_delete_days = {
    ingest     = 0
    records    = 7
    outbox     = 7
    quarantine = 0
    tlog       = 7
    source     = 7
  }

  # Lifecycle backstops: deleted whatever the application does. records must exceed the
  # longest record lifetime the application sets (365 days), or records vanish early.
  # tlog: 0, kept indefinitely, no age or expiry rule at all. Its tiles, entry bundles and
  # checkpoints must outlive every inclusion and consistency proof a phone, witness or
  # monitor may still ask for; they hold hashes only, never event content, so keeping them
  # forever keeps no personal data.
  max_age_days = {
    ingest     = 2
    records    = 400
    outbox     = 90
    quarantine = 14
    tlog       = 0
    source     = 365
  }

  # The device-facing APIs stay warm: no cold start (KMS unwrap, Themis load) on a patient's
  # first request. Ingest and retention are asynchronous and may start cold.
  min_instances = {
    pairing = 1
    records = 1
  }

  firestore_point_in_time_recovery = true
  firestore_delete_protection      = true
  firestore_backup_retention_days  = 7
}
