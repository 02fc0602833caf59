# What the mocked google provider answers for the data sources the module reads (project number, the
# storage service agent), shared by every tests/*.tftest.hcl.

mock_data "google_project" {
  defaults = {
    number = "123456789012"
  }
}

mock_data "google_storage_project_service_account" {
  defaults = {
    email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
  }
}
