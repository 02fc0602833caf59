variable "project" {
  type        = string
  description = "Project of the function and its service account."
}

variable "region" {
  type        = string
  description = "Region of the function (and of its Cloud Run service)."
}

variable "name" {
  type        = string
  description = "Name of the function, and so of its Cloud Run service (its deterministic URL is https://NAME-PROJECT_NUMBER.REGION.run.app)."
}

variable "account_id" {
  type        = string
  description = "account_id of the function's own service account (6 to 30 characters)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "The account_id must be 6 to 30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "display_name" {
  type        = string
  description = "Display name of the service account."
}

variable "description" {
  type        = string
  description = "Description of the function."
}

variable "labels" {
  type        = map(string)
  description = "Labels of the function."
  default     = {}
}

variable "entry_point" {
  type        = string
  description = "The name the code registers the handler under (functions.HTTP)."
}

variable "build" {
  type = object({
    runtime           = string
    service_account   = string
    docker_repository = string
    bucket            = string
    object            = string
  })
  description = "Build settings: the Go runtime, the build service account (its id), the Artifact Registry repository (its id), and the bucket and object of the source zip."
}

variable "memory" {
  type        = string
  description = "available_memory of an instance (e.g. 256Mi, 1Gi); null takes the default."
  default     = "256Mi"
  nullable    = false
}

variable "cpu" {
  type        = string
  description = "available_cpu of an instance; null lets Cloud Run derive it from the memory."
  default     = null
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout in seconds (at most 540 for a function pushed by Pub/Sub)."
}

variable "max_instances" {
  type        = number
  description = "Maximum number of instances."
}

variable "concurrency" {
  type        = number
  description = "Requests one instance serves at once."
  default     = 1
}

variable "ingress" {
  type        = string
  description = "ingress_settings: ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "The ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "env" {
  type        = map(string)
  description = "Plain environment variables (none of them secret)."
  default     = {}
}

variable "secret_env" {
  type = list(object({
    key     = string
    secret  = string
    version = string
  }))
  description = "Environment variables read from Secret Manager at start: variable name, secret ID (in project) and version. The caller grants the service account read access to each secret and lists that grant in wait_for_iam."
  default     = []
}

variable "wait_for_iam" {
  type        = list(string)
  description = "IDs of the grants the function waits for before it is built and started: the build account's roles, this account's read access to its secrets. Used for ordering only."
  default     = []
}
