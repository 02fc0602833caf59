variable "project_id" {
  type        = string
  description = "Google Cloud project that runs the pipeline (and owns the OAuth client approved for the Data Portability scopes)."
}

variable "region" {
  type        = string
  description = "Region of the functions, the Cloud Tasks queue and the KMS key ring. Must offer Cloud Run functions and Cloud Tasks."
  default     = "europe-west1"
}

variable "labels" {
  type        = map(string)
  description = "Extra labels for every labelled resource."
  default     = {}
}

# --- OAuth and the links the operator's app signs -------------------------------------------------

variable "oauth_client_id" {
  type        = string
  description = "Client ID of the OAuth web client (its redirect URI must be the callback_url output)."
}

variable "oauth_client_secret_id" {
  type        = string
  description = "Secret Manager secret ID (in project_id) holding the OAuth client secret. Create it before apply; its value never passes through Terraform."
  default     = "oauth-client-secret"
}

variable "oauth_client_secret_version" {
  type        = string
  description = "Version of the OAuth client secret the functions read (\"latest\" or a number; pin a number to roll back)."
  default     = "latest"
}

variable "start_link_key_secret_id" {
  type        = string
  description = "Secret Manager secret ID (in project_id) holding START_LINK_KEY, the key the operator's app signs start and status links with."
  default     = "start-link-key"
}

variable "start_link_key_secret_version" {
  type        = string
  description = "Version of the start-link key the oauth-callback function reads."
  default     = "latest"
}

variable "public_url" {
  type        = string
  description = "PUBLIC_URL: where browsers reach the oauth-callback function, without a trailing slash (e.g. a custom domain). Null: the function's deterministic run.app URL, https://oauth-callback-PROJECT_NUMBER.REGION.run.app."
  default     = null

  validation {
    condition     = var.public_url == null || can(regex("^https://[^/]+(/.*[^/])?$", var.public_url))
    error_message = "The public_url must be an https URL without a trailing slash."
  }
}

# --- Functions --------------------------------------------------------------------------------------

variable "go_runtime" {
  type        = string
  description = "Cloud Run functions Go runtime. go.mod declares go 1.26.8, so go126 or newer; the provider does not check the name."
  default     = "go126"

  validation {
    condition     = can(regex("^go1[0-9]{2}$", var.go_runtime))
    error_message = "The go_runtime must look like go126."
  }
}

variable "internal_ingress" {
  type        = bool
  description = "Serve the Pub/Sub- and Cloud Tasks-driven functions with internal-only ingress (Pub/Sub and Cloud Tasks calls from the same project count as internal). The oauth-callback function is always public."
  default     = true
}

variable "max_instances" {
  type        = map(number)
  description = "Maximum instances per function (keys: oauth_callback, initiate, initiate_task, poll_start, poll_task, transfer, reset). Bounds the load on the Data Portability API and the bucket."
  default = {
    oauth_callback = 10
    initiate       = 5
    initiate_task  = 5
    poll_start     = 5
    poll_task      = 10
    transfer       = 20
    reset          = 5
  }

  validation {
    condition     = alltrue([for k in ["oauth_callback", "initiate", "initiate_task", "poll_start", "poll_task", "transfer", "reset"] : contains(keys(var.max_instances), k)])
    error_message = "The max_instances map needs every key: oauth_callback, initiate, initiate_task, poll_start, poll_task, transfer, reset."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every function."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN", "ERROR"], var.log_level)
    error_message = "The log_level must be DEBUG, INFO, WARN or ERROR."
  }
}

variable "portability_endpoint" {
  type        = string
  description = "PORTABILITY_ENDPOINT: base URL of the Data Portability API."
  default     = "https://dataportability.googleapis.com/"
}

variable "poll_ladder" {
  type        = list(string)
  description = "POLL_LADDER: delays (Go durations) before each successive state check of a job; the last repeats. Google asks for 5 to 60 minutes."
  default     = ["5m", "10m", "20m", "40m", "60m"]

  validation {
    condition     = length(var.poll_ladder) > 0 && alltrue([for d in var.poll_ladder : can(regex("^([0-9]+(\\.[0-9]+)?(h|m|s))+$", d))])
    error_message = "The poll_ladder needs at least one Go duration such as 5m or 1h30m."
  }
}

variable "part_size_bytes" {
  type        = number
  description = "PART_SIZE: bytes copied by one Transfer invocation (one part). Must finish well inside the 540 s limit."
  default     = 268435456

  validation {
    condition     = var.part_size_bytes >= 1048576 && floor(var.part_size_bytes) == var.part_size_bytes
    error_message = "The part_size_bytes must be a whole number of at least 1 MiB (1048576)."
  }
}

variable "time_based_horizon" {
  type        = string
  description = "TIME_BASED_HORIZON: how long rounds of a time-based grant continue before the final reset (Go duration)."
  default     = "720h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(h|m|s))+$", var.time_based_horizon))
    error_message = "The time_based_horizon must be a Go duration such as 720h."
  }
}

# --- Reconciler ------------------------------------------------------------------------------------

variable "reconcile_schedule" {
  type        = string
  description = "Cloud Scheduler cron (UTC) of the reconciler, which re-drives stuck work and enforces retention."
  default     = "*/10 * * * *"
}

variable "max_job_age" {
  type        = string
  description = "MAX_JOB_AGE: a job still IN_PROGRESS after this long is cancelled (where the API allows) and its resource failed (Go duration)."
  default     = "168h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(h|m|s))+$", var.max_job_age))
    error_message = "The max_job_age must be a Go duration such as 168h."
  }
}

variable "max_round_age" {
  type        = string
  description = "MAX_ROUND_AGE: an exporting round older than this has its unfinished resources failed, so no round stays open (Go duration, at least max_job_age)."
  default     = "336h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(h|m|s))+$", var.max_round_age))
    error_message = "The max_round_age must be a Go duration such as 336h."
  }
}

variable "round_retention_days" {
  type        = number
  description = "ROUND_RETENTION: days a closed round and its records (resources, files, parts, events) are kept before the reconciler deletes them (docs/operations.md, Retention)."
  default     = 30

  validation {
    condition     = var.round_retention_days >= 1 && floor(var.round_retention_days) == var.round_retention_days
    error_message = "The round_retention_days must be a whole number >= 1."
  }
}

variable "round_overlap" {
  type        = string
  description = "ROUND_OVERLAP: how far before the previous round's export time a later round of a time-filtered resource (myactivity.*, chrome.history) starts (Go duration, 0s to 24h; the app deduplicates the overlap)."
  default     = "0s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(h|m|s))+$", var.round_overlap))
    error_message = "The round_overlap must be a Go duration such as 0s or 10m."
  }
}

# --- Archive bucket ---------------------------------------------------------------------------------

variable "bucket_name" {
  type        = string
  description = "Name of the archive bucket (globally unique); BUCKET."
}

variable "bucket_location" {
  type        = string
  description = "Location of the archive bucket. Null: the region."
  default     = null
}

variable "object_prefix" {
  type        = string
  description = "OBJECT_PREFIX: first path element of every archive object."
  default     = "exports"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*$", var.object_prefix)) && var.object_prefix != "tmp"
    error_message = "The object_prefix must be one path element (lower case letters, digits, . _ -) and not tmp (the part prefix)."
  }
}

variable "archive_retention_days" {
  type        = number
  description = "Delete archive objects (under object_prefix) this many days after they are written; 0 keeps them."
  default     = 0

  validation {
    condition     = var.archive_retention_days >= 0 && floor(var.archive_retention_days) == var.archive_retention_days
    error_message = "The archive_retention_days must be a whole number >= 0."
  }
}

variable "archive_versioning" {
  type        = bool
  description = "Keep noncurrent versions of overwritten or deleted archive objects (for noncurrent_version_days)."
  default     = false
}

variable "noncurrent_version_days" {
  type        = number
  description = "With archive_versioning: delete noncurrent versions this many days after they became noncurrent."
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "The noncurrent_version_days must be at least 1."
  }
}

variable "archive_min_retention_days" {
  type        = number
  description = "Bucket retention policy: objects cannot be deleted or overwritten before this many days (0: no policy). Blocks Reset's purge during that time; the policy is not locked."
  default     = 0

  validation {
    condition     = var.archive_min_retention_days >= 0 && floor(var.archive_min_retention_days) == var.archive_min_retention_days
    error_message = "The archive_min_retention_days must be a whole number >= 0."
  }
}

variable "archive_kms_key_id" {
  type        = string
  description = "Optional CMEK for the archive bucket: projects/P/locations/L/keyRings/R/cryptoKeys/K in the bucket's location. Null: Google-managed encryption. The module grants the Cloud Storage service agent on this key."
  default     = null
}

# --- Firestore, KMS -----------------------------------------------------------------------------------

variable "firestore_location" {
  type        = string
  description = "Location of the (default) Firestore database (a region such as europe-west1 or a multi-region such as eur3). Null: the region. Cannot change after creation."
  default     = null
}

variable "firestore_delete_protection" {
  type        = bool
  description = "Refuse to delete the Firestore database (it holds the encrypted tokens and the progress of every export)."
  default     = true
}

variable "kms_location" {
  type        = string
  description = "Location of the token-encryption key ring. Null: the region."
  default     = null
}

variable "key_ring_name" {
  type        = string
  description = "Name of the KMS key ring (key rings cannot be deleted: pick a new name for a new deployment in the same project and location)."
  default     = "portability-pipeline"
}

variable "token_key_rotation_period" {
  type        = string
  description = "Rotation period of the token-encryption key (seconds with an s suffix, at least 86400s). Old versions stay usable for decryption."
  default     = "7776000s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.token_key_rotation_period)) && try(tonumber(trimsuffix(var.token_key_rotation_period, "s")) >= 86400, false)
    error_message = "The token_key_rotation_period must be seconds with an s suffix, at least 86400s."
  }
}

# --- Pub/Sub, Cloud Tasks ---------------------------------------------------------------------------

variable "dead_letter_max_attempts" {
  type        = number
  description = "Deliveries of a Pub/Sub message before it goes to <topic>-dead-letter (5 to 100)."
  default     = 10

  validation {
    condition     = var.dead_letter_max_attempts >= 5 && var.dead_letter_max_attempts <= 100
    error_message = "The dead_letter_max_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "dead_letter_retention_days" {
  type        = number
  description = "How long the <topic>-dead-letter subscriptions keep unacknowledged messages (1 to 31 days)."
  default     = 31

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 31
    error_message = "The dead_letter_retention_days must be between 1 and 31."
  }
}

variable "tasks_max_dispatches_per_second" {
  type        = number
  description = "Cloud Tasks queue: maximum task dispatches per second (polls and delayed initiations)."
  default     = 5
}

variable "tasks_max_concurrent_dispatches" {
  type        = number
  description = "Cloud Tasks queue: maximum tasks running at once."
  default     = 10
}

variable "tasks_max_attempts" {
  type        = number
  description = "Cloud Tasks queue: attempts per task before it is dropped (-1: unlimited). A dropped poll stops the job's polling chain, so keep it generous."
  default     = 50
}

variable "webhook_url" {
  type        = string
  description = "HTTPS endpoint of the operator's app that receives every export event as a signed POST (functions/webhook). Empty: no webhook function; subscribe to export-events directly."
  default     = ""

  validation {
    condition     = var.webhook_url == "" || startswith(var.webhook_url, "https://")
    error_message = "The webhook_url must be an https:// URL (or empty for no webhook)."
  }
}

variable "webhook_secret_id" {
  type        = string
  description = "Secret Manager secret (created by the operator, at least 32 characters) that signs webhook POSTs; only the webhook function may read it."
  default     = "webhook-secret"
}

variable "webhook_secret_version" {
  type        = string
  description = "Version of the webhook secret the function reads (\"latest\" or a number)."
  default     = "latest"
}

# --- Monitoring (monitoring.tf) ---------------------------------------------------------------------

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels every alert notifies, as IDs projects/PROJECT/notificationChannels/ID (create them with google_monitoring_notification_channel or in the console). Empty (the default, so that roots written before this variable keep applying): incidents only open in the console and nobody is told."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must be an ID of the form projects/PROJECT/notificationChannels/ID."
  }
}

variable "alert_thresholds" {
  type = object({
    # The oldest unacknowledged message of a push subscription is older than this (seconds). A message
    # failing every delivery reaches its dead letter after dead_letter_max_attempts backed-off retries
    # (roughly an hour with the defaults): this fires before that.
    push_oldest_unacked_seconds = optional(number, 1800)
    # The share of a function's requests answered 5xx over 5 minutes, sustained for function_5xx_minutes.
    # A step answers 5xx to be redelivered after a transient error, so a few are normal.
    function_5xx_ratio   = optional(number, 0.1)
    function_5xx_minutes = optional(number, 15)
    # Token refreshes refused with invalid_grant in one hour above which to alert (0: any).
    token_refresh_failures_per_hour = optional(number, 0)
    # How long a round may stay open (not closed) before the oldest one alerts: the reconciler ends a round
    # at MAX_ROUND_AGE (336h by default: Google keeps an export's files 14 days), so its default plus a
    # day for the last transfer, the settlement and the reset. Keep it above MAX_ROUND_AGE.
    round_expected_life_hours = optional(number, 360)
    # The reconciler logged no summary for this long (it runs every 10 minutes).
    reconciler_silent_minutes = optional(number, 30)
  })
  description = "Alert thresholds (monitoring.tf, docs/operations.md); every field is optional and defaults as shown in variables.tf."
  default     = {}

  validation {
    condition = (
      var.alert_thresholds.push_oldest_unacked_seconds >= 60 &&
      var.alert_thresholds.function_5xx_ratio > 0 && var.alert_thresholds.function_5xx_ratio <= 1 &&
      var.alert_thresholds.function_5xx_minutes >= 5 &&
      var.alert_thresholds.token_refresh_failures_per_hour >= 0 &&
      var.alert_thresholds.round_expected_life_hours >= 1 &&
      var.alert_thresholds.reconciler_silent_minutes >= 20
    )
    error_message = "The alert_thresholds need push_oldest_unacked_seconds >= 60, 0 < function_5xx_ratio <= 1, function_5xx_minutes >= 5, token_refresh_failures_per_hour >= 0, round_expected_life_hours >= 1 and reconciler_silent_minutes >= 20 (two runs of the reconciler)."
  }
}

variable "runbook_base_url" {
  type        = string
  description = "Where the runbooks (docs/runbooks/*.md) are published, without a trailing slash; each alert links RUNBOOK_BASE_URL/<alert>.md. Point it at your fork or your wiki."
  default     = "https://github.com/portability-pipeline/pipeline/blob/main/docs/runbooks"

  validation {
    condition     = can(regex("^https://[^/]+(/.*[^/])?$", var.runbook_base_url))
    error_message = "The runbook_base_url must be an https URL without a trailing slash."
  }
}
