# Clinic Bridge in one Google Cloud project: the composition of the other modules. An
# environment (infra/environments/<env>) is this module plus its deliberate settings, so dev
# and prod differ only in the arguments they pass, never in wiring.
#
# Order of creation: APIs; identities and custom roles; keys, with their IAM policies (the
# service agents must be able to use a CMEK key before a bucket or the database is created
# with it); buckets; Firestore; functions; the scheduler; audit logs and alerts.

module "catalog" {
  source = "../catalog"
}

locals {
  indexes = jsondecode(file("${path.module}/../../../firestore.indexes.json"))
  rules   = file("${path.module}/../../../firestore.rules")

  app_bucket_roles = sort(keys(module.catalog.buckets))

  # One CMEK key per bucket (so one bucket's data can be crypto-shredded alone) and one for
  # Firestore, each usable only by the service agent that encrypts with it.
  cmek_keys = merge(
    {
      for role in concat(local.app_bucket_roles, ["source"]) : "bucket-${role}" => {
        agent = "serviceAccount:${module.identities.gcs_agent_email}"
      }
    },
    {
      firestore = {
        agent = "serviceAccount:${module.identities.firestore_agent_email}"
      }
    },
  )
}

module "project_services" {
  source     = "../project-services"
  project_id = var.project_id
}

module "identities" {
  source = "../identities"

  project_id         = var.project_id
  functions          = module.catalog.functions
  custom_roles       = module.catalog.custom_roles
  project_grants     = module.catalog.project_grants
  firestore_database = var.firestore_database

  depends_on = [module.project_services]
}

module "kms" {
  source = "../kms"

  project_id                 = var.project_id
  location                   = module.catalog.location
  key_ring                   = module.catalog.key_ring
  function_keys              = module.catalog.function_keys
  kms_grants                 = module.catalog.kms_grants
  function_members           = module.identities.function_members
  cmek_keys                  = local.cmek_keys
  protection_level           = var.kms_protection_level
  rotation_period            = var.kms_rotation_period
  destroy_scheduled_duration = var.kms_destroy_scheduled_duration
  key_custodians             = var.key_custodians

  depends_on = [module.project_services]
}

module "storage" {
  source = "../storage"

  project_id       = var.project_id
  location         = module.catalog.location
  buckets          = module.catalog.buckets
  cmek_key_ids     = module.kms.cmek_ready
  soft_delete_days = var.soft_delete_days
  max_age_days     = var.max_age_days
  storage_grants   = module.catalog.storage_grants
  function_members = module.identities.function_members
  role_names       = module.identities.role_names
  hospitals        = var.hospitals
  build_member     = "serviceAccount:${module.identities.build_email}"
  source_uploaders = var.source_uploaders

  depends_on = [module.project_services]
}

module "firestore" {
  source = "../firestore"

  project_id             = var.project_id
  location               = module.catalog.location
  database               = var.firestore_database
  cmek_key_id            = module.kms.cmek_ready["firestore"]
  indexes                = local.indexes
  rules                  = local.rules
  point_in_time_recovery = var.firestore_point_in_time_recovery
  delete_protection      = var.firestore_delete_protection
  backup_retention_days  = var.firestore_backup_retention_days

  depends_on = [module.project_services]
}

module "functions" {
  source = "../functions"

  project_id               = var.project_id
  location                 = module.catalog.location
  functions                = module.catalog.functions
  function_emails          = module.identities.function_emails
  event_trigger_email      = module.identities.event_trigger_email
  scheduler_email          = module.identities.scheduler_email
  build_email              = module.identities.build_email
  build_service_account_id = module.identities.build_id
  bucket_names             = module.storage.bucket_names
  app_bucket_roles         = local.app_bucket_roles
  firestore_database       = module.firestore.database
  source_object            = var.source_object
  api_base                 = var.api_base
  min_instances            = var.min_instances
  private_invokers         = var.private_invokers

  # A function must not start before it can reach its key, its buckets and its database.
  depends_on = [module.kms, module.storage, module.firestore, module.identities]
}

module "scheduler" {
  source = "../scheduler"

  project_id      = var.project_id
  region          = coalesce(var.scheduler_region, module.catalog.location)
  functions       = module.catalog.functions
  function_urls   = module.functions.urls
  scheduler_email = module.identities.scheduler_email

  depends_on = [module.project_services]
}

module "monitoring" {
  source = "../monitoring"

  project_id                 = var.project_id
  function_names             = sort(keys(module.catalog.functions))
  alert_emails               = var.alert_emails
  ingest_rejection_threshold = var.ingest_rejection_threshold

  depends_on = [module.project_services]
}
