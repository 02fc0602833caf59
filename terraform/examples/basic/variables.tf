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

variable "alert_emails" {
  type        = list(string)
  description = "E-mail addresses every alert notifies (one notification channel each). Empty: incidents open in the console only."

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "Each alert e-mail must be an address like ops@example.com."
  }
}
