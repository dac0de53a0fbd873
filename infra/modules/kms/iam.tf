# Authoritative IAM policy on every key: apply replaces whatever else was granted on the key,
# so a grant added by hand does not survive the next apply.
#
# A function key's policy holds exactly the catalog's grants for that key (the function's
# own account, with its one role), plus, only while var.key_custodians is non-empty and only
# on ENCRYPT_DECRYPT keys, Encrypt-only for the operators who wrap a new Themis key (bootstrap
# and rotation). Encrypt cannot unwrap anything, so custodians never see key material; a
# signing key wraps nothing, so custodians get nothing on it.

locals {
  # key => role => [members]
  function_key_bindings = {
    for key in keys(var.function_keys) : key => {
      for id, grant in var.kms_grants : grant.role => var.function_members[grant.function]... if grant.key == key
    }
  }
}

data "google_iam_policy" "function_key" {
  for_each = var.function_keys

  dynamic "binding" {
    for_each = local.function_key_bindings[each.key]
    content {
      role    = binding.key
      members = sort(distinct(binding.value))
    }
  }

  dynamic "binding" {
    for_each = length(var.key_custodians) > 0 && each.value.purpose == "ENCRYPT_DECRYPT" ? ["custodians"] : []
    content {
      role    = "roles/cloudkms.cryptoKeyEncrypter"
      members = sort(var.key_custodians)
    }
  }
}

resource "google_kms_crypto_key_iam_policy" "function_key" {
  for_each = var.function_keys

  crypto_key_id = google_kms_crypto_key.function[each.key].id
  policy_data   = data.google_iam_policy.function_key[each.key].policy_data
}

# A CMEK key is usable by the one Google service agent that encrypts the resource it
# protects (Cloud Storage for a bucket key, Firestore for the database key), and no one else.
data "google_iam_policy" "cmek" {
  for_each = var.cmek_keys

  binding {
    role    = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    members = [each.value.agent]
  }
}

resource "google_kms_crypto_key_iam_policy" "cmek" {
  for_each = var.cmek_keys

  crypto_key_id = google_kms_crypto_key.cmek[each.key].id
  policy_data   = data.google_iam_policy.cmek[each.key].policy_data
}
