terraform {
  required_version = ">= 1.6.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.30.0, < 8.0.0"
    }
  }

  # State holds resource names and IAM policies, never patient data. It lives in a bucket
  # created once by hand (docs/OPERATIONS.md, "Deploy from zero"):
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=clinic-bridge/<env>"
  backend "gcs" {}
}
