# Two key rings. "clinic-bridge" (the catalog's keyRing) holds one key per function: an
# ENCRYPT_DECRYPT key wraps that function's Themis key material and nothing else (invariant 4);
# an ASYMMETRIC_SIGN key (the sequencer's) signs what that function publishes, its private
# half never leaving Cloud KMS. A second ring holds the CMEK keys Cloud Storage and Firestore
# encrypt at rest with. Nobody holds any role on either ring: every grant is on one key, in
# iam.tf.
#
# Keys cannot be deleted in Cloud KMS; destroying the resource schedules its versions for
# destruction, which makes everything they protect unreadable. prevent_destroy guards that.

locals {
  # Each purpose's algorithm where the catalog names none; a catalog "algorithm" wins.
  algorithms = {
    ENCRYPT_DECRYPT = "GOOGLE_SYMMETRIC_ENCRYPTION"
    ASYMMETRIC_SIGN = "EC_SIGN_P256_SHA256"
    MAC             = "HMAC_SHA256"
  }
}

resource "google_kms_key_ring" "functions" {
  project  = var.project_id
  name     = var.key_ring
  location = var.location
}

resource "google_kms_key_ring" "cmek" {
  project  = var.project_id
  name     = "${var.key_ring}-cmek"
  location = var.location
}

resource "google_kms_crypto_key" "function" {
  for_each = var.function_keys

  name     = each.key
  key_ring = google_kms_key_ring.functions.id
  purpose  = each.value.purpose

  # Cloud KMS rotates symmetric keys only, and refuses a rotation_period on any other key. A
  # new primary version wraps new key material; older versions stay enabled so material they
  # wrapped still unwraps (docs/OPERATIONS.md). A signing key changes only by a deliberate new
  # version, because everyone who verifies its signatures has to be told the new public key.
  rotation_period            = each.value.purpose == "ENCRYPT_DECRYPT" ? var.rotation_period : null
  destroy_scheduled_duration = var.destroy_scheduled_duration

  version_template {
    algorithm        = coalesce(each.value.algorithm, local.algorithms[each.value.purpose])
    protection_level = var.protection_level
  }

  labels = {
    app     = "clinic-bridge"
    use     = "function-key"
    purpose = lower(each.value.purpose)
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "cmek" {
  for_each = var.cmek_keys

  name                       = each.key
  key_ring                   = google_kms_key_ring.cmek.id
  purpose                    = "ENCRYPT_DECRYPT"
  rotation_period            = var.rotation_period
  destroy_scheduled_duration = var.destroy_scheduled_duration

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = var.protection_level
  }

  labels = {
    app = "clinic-bridge"
    use = "cmek"
  }

  lifecycle {
    prevent_destroy = true
  }
}
