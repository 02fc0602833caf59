# The Terraform and provider versions this module is written for.
#
# Terraform >= 1.7: the tests in tests/ use mock providers (`terraform test` with mock_provider), which
# came in 1.7. Provider ranges are what check.sh validates offline (google 8.0.0, archive 1.3.0).

terraform {
  required_version = ">= 1.7.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.0.0, < 9.0.0" # validated offline with 8.0.0 (see check.sh)
    }
    # archive >= 1.3.0: excludes are exact paths there (globs came later), so source.tf lists the test
    # files through fileset(); 2.x accepts the same list.
    archive = {
      source  = "hashicorp/archive"
      version = ">= 1.3.0, < 3.0.0"
    }
  }
}
