output "callback_url" {
  description = "Add this to the OAuth client's authorized redirect URIs."
  value       = module.pipeline.callback_url
}

output "start_url" {
  description = "Point the app's button at signed links to this URL."
  value       = module.pipeline.start_url
}

output "bucket" {
  description = "Where the archives land."
  value       = module.pipeline.bucket
}

output "topics" {
  description = "The pipeline's Pub/Sub topics."
  value       = module.pipeline.topics
}

output "dashboard_url" {
  description = "The pipeline's monitoring dashboard."
  value       = module.pipeline.dashboard.url
}
