variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "region" {
  type        = string
  description = "Region of the pipeline."
  default     = "europe-west1"
}

variable "oauth_client_id" {
  type        = string
  description = "Client ID of the OAuth web client approved for the Data Portability scopes."
}
