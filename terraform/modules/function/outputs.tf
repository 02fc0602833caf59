output "service_account_email" {
  description = "Email of the function's service account."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "IAM member (serviceAccount:EMAIL) of the function's service account, for the caller's grants."
  value       = google_service_account.this.member
}

output "url" {
  description = "The function's URL as Cloud Run reports it."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "Name of the Cloud Run service behind the function: where roles/run.invoker is granted."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "timeout_seconds" {
  description = "The function's request timeout in seconds (a push subscription's acknowledgement deadline)."
  value       = google_cloudfunctions2_function.this.service_config[0].timeout_seconds
}

output "function_id" {
  description = "Resource name of the function: projects/PROJECT/locations/REGION/functions/NAME."
  value       = google_cloudfunctions2_function.this.id
}
