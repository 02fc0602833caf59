# One source zip of the whole Go module for every function: the Go buildpack builds only the package at
# the source root (the root package blank-imports functions/*), and each function's entry_point picks its
# handler. The zip is reproducible (the archive provider zeroes modification times and walks in order), so
# its hash names the object: a change to the code gives a new object and redeploys every function; the same
# commit gives the same object (that is how a rollback redeploys old code).

locals {
  repo_root = abspath("${path.module}/..")

  # archive_file matches excludes as exact paths (relative to source_dir); a directory name skips the whole
  # directory. Test files are listed one by one: the buildpack compiles root _test.go files too, and none
  # belongs in production.
  source_excludes = concat(
    [".git", ".ci", ".cache", "artifacts", "docs", "emulator-test", "terraform"],
    tolist(fileset(local.repo_root, "**/*_test.go")),
    tolist(fileset(local.repo_root, "**/testdata/**")),
  )
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = local.repo_root
  excludes    = local.source_excludes
  output_path = "${path.root}/.terraform/tmp/portability-pipeline-source.zip"
}

# Google-managed encryption is enough here: the bucket holds the program's source code, no personal data.
resource "google_storage_bucket" "source" {
  project  = var.project_id
  name     = "${var.project_id}-portability-source"
  location = var.region
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  # A replaced source object stays as a noncurrent version for a while: a manual rollback can rebuild
  # from it (see README.md).
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.services]
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "functions/source-${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

# The build account (accounts.tf) reads the source, writes the image and its logs, nothing else.
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.account["build"].member
}

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "portability-functions"
  format        = "DOCKER"
  description   = "Images of the portability pipeline functions"
  labels        = local.labels

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.services]
}

resource "google_artifact_registry_repository_iam_member" "build_writes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.account["build"].member
}

# Cloud Run functions copies the source into its own staging bucket, gcf-v2-sources-PROJECT_NUMBER-REGION,
# created on the first deploy (so Terraform cannot name it as a resource), and the build reads it there.
# Granted on the project but conditioned on that bucket: the build account can never read the archives.
resource "google_project_iam_member" "build_reads_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.account["build"].member

  condition {
    title       = "gcf-v2-sources-only"
    description = "Only the Cloud Run functions source staging bucket of this region"
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${local.project_number}-${var.region}\")"
  }
}

# Build logs. Cloud Logging has no resource narrower than the project for this role.
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.account["build"].member
}

locals {
  # The build settings every function gets (modules/function's build input).
  build = {
    runtime           = var.go_runtime
    bucket            = google_storage_bucket.source.name
    object            = google_storage_bucket_object.source.name
    service_account   = google_service_account.account["build"].id
    docker_repository = google_artifact_registry_repository.functions.id
  }

  # The build account's grants: every function waits for them (wait_for_iam), or its first build fails.
  build_iam = [
    google_artifact_registry_repository_iam_member.build_writes_images.id,
    google_storage_bucket_iam_member.build_reads_source.id,
    google_project_iam_member.build_reads_staged_source.id,
    google_project_iam_member.build_logs.id,
  ]
}
