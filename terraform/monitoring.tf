# Monitoring: what tells the operator that work stopped moving. Log-based metrics on the pipeline's own
# log lines, alert policies that notify var.notification_channels, and one dashboard.
#
# Each alert's documentation links its runbook (docs/runbooks/<alert>.md, published at
# var.runbook_base_url); docs/operations.md lists them. The log lines the metrics count are JSON lines of
# shared/logging on stderr; Cloud Logging keeps every key but severity, time and the logging.googleapis.com/*
# fields in jsonPayload, the message under jsonPayload.message (terraform/logmetrics_test.go checks the
# filters against that encoding).

locals {
  # Log entries of this pipeline's functions only (every function's service is named portability-*):
  # other workloads of the project never count.
  log_filter_functions = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^portability-\""

  # The same services, as a Cloud Monitoring filter term.
  monitoring_filter_functions = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = monitoring.regex.full_match(\"portability-.*\")"

  # Subscriptions by kind (sorted by name), the webhook's with them when it exists.
  push_subscriptions               = sort([for k in local.pushed_topics : google_pubsub_subscription.push[k].name])
  dead_letter_subscriptions        = sort([for k in local.pushed_topics : google_pubsub_subscription.dead_letter[k].name])
  push_subscriptions_filter        = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${join("|", local.push_subscriptions)}\")"
  dead_letter_subscriptions_filter = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${join("|", local.dead_letter_subscriptions)}\")"

  # Alert-only thresholds in the units the policies use.
  round_expected_life_seconds = var.alert_thresholds.round_expected_life_hours * 3600

  # Buckets of the oldest-open-round distribution. The alert reads its 99th percentile, which Cloud
  # Monitoring interpolates inside a bucket; with the threshold as a bucket bound, an age above the
  # threshold always reads above it and an age below always below, so the alert is exact.
  round_age_bounds = sort(distinct(concat(
    [for h in [1, 6, 12, 24, 48, 72, 168, 336, 720] : h * 3600],
    [local.round_expected_life_seconds],
  )))

  # Each alert's runbook: docs/runbooks/<the alert's key, with dashes>.md.
  runbook = { for k in keys(local.alerts) : k => "${var.runbook_base_url}/${replace(k, "_", "-")}.md" }
}

# --- Log-based metrics (logging.googleapis.com/user/portability/...) -----------------------------------

# One reconcile.repair line per repair the reconciler makes (attributes kind, user, round). Only kind
# becomes a label: users and rounds would be unbounded label values (and personal data).
resource "google_logging_metric" "reconcile_repairs" {
  project     = var.project_id
  name        = "portability/reconcile_repairs"
  description = "Repairs made by the reconciler (work found past its deadline and re-driven), by kind."
  filter      = "${local.log_filter_functions} AND jsonPayload.message=\"reconcile.repair\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Reconciler repairs"

    labels {
      key         = "kind"
      value_type  = "STRING"
      description = "What was re-driven (the repair's kind attribute)."
    }
  }

  label_extractors = {
    kind = "EXTRACT(jsonPayload.kind)"
  }

  depends_on = [google_project_service.services]
}

# One reconcile.summary line per reconciler run; oldestOpenRoundAgeSeconds is the age of the oldest round
# not closed (0 when none is open). A distribution because log-based metrics cannot be gauges; every run
# adds one value.
resource "google_logging_metric" "oldest_open_round_age" {
  project         = var.project_id
  name            = "portability/oldest_open_round_age"
  description     = "Age of the oldest open round, as each reconciler run reports it (seconds)."
  filter          = "${local.log_filter_functions} AND jsonPayload.message=\"reconcile.summary\""
  value_extractor = "EXTRACT(jsonPayload.oldestOpenRoundAgeSeconds)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Oldest open round age"
  }

  bucket_options {
    explicit_buckets {
      bounds = local.round_age_bounds
    }
  }

  depends_on = [google_project_service.services]
}

# A token refresh Google refused with invalid_grant: the person revoked the grant, or the refresh token
# died (apps in "testing" status lose them after 7 days). Other reasons (network, 5xx) heal by retrying
# and are not counted.
resource "google_logging_metric" "token_refresh_failures" {
  project     = var.project_id
  name        = "portability/token_refresh_failures"
  description = "Token refreshes refused with invalid_grant (a grant revoked or expired for good)."
  filter      = "${local.log_filter_functions} AND jsonPayload.message=\"token.refresh_failed\" AND jsonPayload.reason=\"invalid_grant\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Token refresh failures (invalid_grant)"
  }

  depends_on = [google_project_service.services]
}

# The state-change line each round writes (shared/store: event round.state, from, to): rounds entering
# each state.
resource "google_logging_metric" "round_state_changes" {
  project     = var.project_id
  name        = "portability/round_state_changes"
  description = "Rounds entering a state (one round.state log line per change), by the state entered."
  filter      = "${local.log_filter_functions} AND jsonPayload.event=\"round.state\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Round state changes"

    labels {
      key         = "to"
      value_type  = "STRING"
      description = "The state the round entered."
    }
  }

  label_extractors = {
    to = "EXTRACT(jsonPayload.to)"
  }

  depends_on = [google_project_service.services]
}

locals {
  log_metric_type = {
    reconcile_repairs      = "logging.googleapis.com/user/${google_logging_metric.reconcile_repairs.name}"
    oldest_open_round_age  = "logging.googleapis.com/user/${google_logging_metric.oldest_open_round_age.name}"
    token_refresh_failures = "logging.googleapis.com/user/${google_logging_metric.token_refresh_failures.name}"
    round_state_changes    = "logging.googleapis.com/user/${google_logging_metric.round_state_changes.name}"
  }
}

# --- Alerts ---------------------------------------------------------------------------------------------

# The alerts, by key. Each notifies var.notification_channels and links its runbook
# (docs/runbooks/<key with dashes>.md). A condition is a threshold (`threshold` set: above it for
# `duration`), or an absence (`threshold` null: no data for `duration`); `aggregation` aligns and reduces
# the series; `denominator_filter`, where set, makes the threshold a ratio of the two filters. `text` is the
# documentation; the runbook line is added to it.
locals {
  alerts = {
    # A message on a dead-letter subscription is an export that stopped: it failed every delivery.
    # Nothing reads these subscriptions, so the backlog stays until an operator replays or discards it.
    dead_letter_backlog = {
      display_name = "Portability: messages on a dead-letter subscription"
      severity     = "ERROR"
      condition    = "Undelivered messages on a <topic>-dead-letter subscription > 0"
      filter       = "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_subscriptions_filter}"
      threshold    = 0
      duration     = "0s"
      aggregation  = { alignment_period = "300s", per_series_aligner = "ALIGN_MAX" }
      subject      = "Dead letters on $${resource.label.subscription_id}"
      text         = <<-EOT
        Messages failed every delivery (${var.dead_letter_max_attempts} attempts) and were parked on the
        dead-letter subscription `$${resource.label.subscription_id}`: the exports they carry stopped.
      EOT
    }

    # A push subscription whose oldest message waits too long: its function fails or cannot keep up, and
    # the message is on its way to the dead letter.
    push_oldest_unacked = {
      display_name = "Portability: a push subscription's oldest message is old"
      severity     = "WARNING"
      condition    = "Oldest unacknowledged message of a push subscription > ${var.alert_thresholds.push_oldest_unacked_seconds} s"
      filter       = "metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.push_subscriptions_filter}"
      threshold    = var.alert_thresholds.push_oldest_unacked_seconds
      duration     = "300s"
      aggregation  = { alignment_period = "300s", per_series_aligner = "ALIGN_MAX" }
      subject      = "Old messages on $${resource.label.subscription_id}"
      text         = <<-EOT
        The oldest unacknowledged message of the push subscription `$${resource.label.subscription_id}` is
        older than ${var.alert_thresholds.push_oldest_unacked_seconds} s: its function keeps failing or falls
        behind, and after ${var.dead_letter_max_attempts} failed deliveries the message goes to the dead letter.
      EOT
    }

    # The share of a function's requests answered 5xx. Steps answer 5xx to be redelivered after a
    # transient error, so the ratio must stay high for a while before it means something is broken.
    function_5xx = {
      display_name       = "Portability: a function answers 5xx"
      severity           = "ERROR"
      condition          = "5xx share of a function's requests > ${var.alert_thresholds.function_5xx_ratio} for ${var.alert_thresholds.function_5xx_minutes} min"
      filter             = "metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\" AND ${local.monitoring_filter_functions}"
      denominator_filter = "metric.type = \"run.googleapis.com/request_count\" AND ${local.monitoring_filter_functions}"
      threshold          = var.alert_thresholds.function_5xx_ratio
      duration           = "${var.alert_thresholds.function_5xx_minutes * 60}s"
      aggregation        = { alignment_period = "300s", per_series_aligner = "ALIGN_DELTA", cross_series_reducer = "REDUCE_SUM", group_by_fields = ["resource.label.service_name"] }
      subject            = "5xx from $${resource.label.service_name}"
      text               = <<-EOT
        More than ${var.alert_thresholds.function_5xx_ratio * 100}% of the requests to
        `$${resource.label.service_name}` were answered 5xx for ${var.alert_thresholds.function_5xx_minutes}
        minutes. Pushed steps answer 5xx to be retried; this many means the retries are not healing.
      EOT
    }

    # The reconciler repairs something in every run for an hour: hand-offs keep getting lost, or a repair
    # does not hold (the same work is re-driven again and again). One repair now and then is the
    # reconciler doing its job and alerts nobody. Twenty minutes hold two runs (every 10 minutes): a
    # window is above zero while the runs repair.
    reconciler_repairs = {
      display_name = "Portability: the reconciler keeps repairing"
      severity     = "WARNING"
      condition    = "Reconciler repairs > 0 in every 20 minutes for an hour"
      filter       = "metric.type = \"${local.log_metric_type.reconcile_repairs}\" AND resource.type = \"cloud_run_revision\""
      threshold    = 0
      duration     = "3600s"
      aggregation  = { alignment_period = "1200s", per_series_aligner = "ALIGN_DELTA", cross_series_reducer = "REDUCE_SUM" }
      subject      = "The reconciler has been repairing for an hour"
      text         = <<-EOT
        The reconciler found work past its deadline and re-drove it in every run for an hour
        (metric `${local.log_metric_type.reconcile_repairs}`, label `kind`). Hand-offs keep getting lost,
        or a repair does not hold.
      EOT
    }

    # The reconciler stopped reporting: nothing repairs lost hand-offs and the oldest-round alert is blind.
    reconciler_silent = {
      display_name = "Portability: the reconciler stopped reporting"
      severity     = "ERROR"
      condition    = "No reconcile.summary for ${var.alert_thresholds.reconciler_silent_minutes} min"
      filter       = "metric.type = \"${local.log_metric_type.oldest_open_round_age}\" AND resource.type = \"cloud_run_revision\""
      threshold    = null
      duration     = "${var.alert_thresholds.reconciler_silent_minutes * 60}s"
      aggregation  = { alignment_period = "600s", per_series_aligner = "ALIGN_PERCENTILE_99", cross_series_reducer = "REDUCE_MAX" }
      subject      = "The reconciler stopped reporting"
      text         = <<-EOT
        No reconciler run logged its `reconcile.summary` line for ${var.alert_thresholds.reconciler_silent_minutes}
        minutes (it runs every 10). Lost hand-offs are not repaired meanwhile, and the oldest-open-round
        alert sees nothing.
      EOT
    }

    # Google refused token refreshes with invalid_grant: those people's exports fail until they consent
    # again. One now and then is a person revoking access; more at once point at the OAuth client or
    # consent screen.
    token_refresh_failures = {
      display_name = "Portability: token refreshes refused (invalid_grant)"
      severity     = "WARNING"
      condition    = "Token refreshes refused with invalid_grant in an hour > ${var.alert_thresholds.token_refresh_failures_per_hour}"
      filter       = "metric.type = \"${local.log_metric_type.token_refresh_failures}\" AND resource.type = \"cloud_run_revision\""
      threshold    = var.alert_thresholds.token_refresh_failures_per_hour
      duration     = "0s"
      aggregation  = { alignment_period = "3600s", per_series_aligner = "ALIGN_DELTA", cross_series_reducer = "REDUCE_SUM" }
      subject      = "Token refreshes refused with invalid_grant"
      text         = <<-EOT
        Google refused more than ${var.alert_thresholds.token_refresh_failures_per_hour} token refreshes
        with `invalid_grant` in an hour (metric `${local.log_metric_type.token_refresh_failures}`): those
        people revoked access, or their refresh tokens died. Their exports fail until they consent again.
      EOT
    }

    # The oldest open round is older than a round may live: something stopped moving and the reconciler
    # did not (or could not) repair it.
    oldest_open_round = {
      display_name = "Portability: a round is open longer than its expected life"
      severity     = "ERROR"
      condition    = "Oldest open round > ${var.alert_thresholds.round_expected_life_hours} h"
      filter       = "metric.type = \"${local.log_metric_type.oldest_open_round_age}\" AND resource.type = \"cloud_run_revision\""
      threshold    = local.round_expected_life_seconds
      duration     = "0s"
      aggregation  = { alignment_period = "1200s", per_series_aligner = "ALIGN_PERCENTILE_99", cross_series_reducer = "REDUCE_MAX" }
      subject      = "A round is open longer than ${var.alert_thresholds.round_expected_life_hours} h"
      text         = <<-EOT
        The reconciler reports a round still open (not closed) after more than
        ${var.alert_thresholds.round_expected_life_hours} hours, longer than an export, its transfer and its
        reset should take. A person is waiting for an archive that is not coming by itself.
      EOT
    }
  }
}

resource "google_monitoring_alert_policy" "alert" {
  for_each = local.alerts

  project      = var.project_id
  display_name = each.value.display_name
  combiner     = "OR"
  severity     = each.value.severity
  user_labels  = local.labels

  conditions {
    display_name = each.value.condition

    dynamic "condition_threshold" {
      for_each = each.value.threshold == null ? [] : [each.value]
      content {
        filter             = condition_threshold.value.filter
        denominator_filter = try(condition_threshold.value.denominator_filter, null)
        comparison         = "COMPARISON_GT"
        threshold_value    = condition_threshold.value.threshold
        duration           = condition_threshold.value.duration

        aggregations {
          alignment_period     = condition_threshold.value.aggregation.alignment_period
          per_series_aligner   = condition_threshold.value.aggregation.per_series_aligner
          cross_series_reducer = try(condition_threshold.value.aggregation.cross_series_reducer, null)
          group_by_fields      = try(condition_threshold.value.aggregation.group_by_fields, null)
        }

        # A ratio is aligned and reduced the same way above and below the line.
        dynamic "denominator_aggregations" {
          for_each = try(condition_threshold.value.denominator_filter, null) == null ? [] : [condition_threshold.value.aggregation]
          content {
            alignment_period     = denominator_aggregations.value.alignment_period
            per_series_aligner   = denominator_aggregations.value.per_series_aligner
            cross_series_reducer = try(denominator_aggregations.value.cross_series_reducer, null)
            group_by_fields      = try(denominator_aggregations.value.group_by_fields, null)
          }
        }

        trigger {
          count = 1
        }
      }
    }

    dynamic "condition_absent" {
      for_each = each.value.threshold == null ? [each.value] : []
      content {
        filter   = condition_absent.value.filter
        duration = condition_absent.value.duration

        aggregations {
          alignment_period     = condition_absent.value.aggregation.alignment_period
          per_series_aligner   = condition_absent.value.aggregation.per_series_aligner
          cross_series_reducer = try(condition_absent.value.aggregation.cross_series_reducer, null)
        }

        trigger {
          count = 1
        }
      }
    }
  }

  notification_channels = var.notification_channels

  documentation {
    subject   = each.value.subject
    mime_type = "text/markdown"
    content   = "${each.value.text}\nRunbook: ${local.runbook[each.key]}\n"

    links {
      display_name = "Runbook"
      url          = local.runbook[each.key]
    }
  }

  depends_on = [google_project_service.services]
}

# --- Dashboard ----------------------------------------------------------------------------------------

locals {
  # One chart: a title and the time series it draws (a filter and how to align and reduce it).
  dashboard_charts = [
    {
      title  = "Pub/Sub backlog: push subscriptions (undelivered messages)"
      filter = "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.push_subscriptions_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] }
      plot   = "LINE"
    },
    {
      title  = "Pub/Sub backlog: dead-letter subscriptions (undelivered messages)"
      filter = "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_subscriptions_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] }
      plot   = "LINE"
    },
    {
      title     = "Oldest unacknowledged message of each push subscription (s)"
      filter    = "metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.push_subscriptions_filter}"
      agg       = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] }
      plot      = "LINE"
      threshold = var.alert_thresholds.push_oldest_unacked_seconds
    },
    {
      title  = "Function errors: 5xx answers per second"
      filter = "metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\" AND ${local.monitoring_filter_functions}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.service_name"] }
      plot   = "LINE"
    },
    {
      title  = "Function latency: 95th percentile (ms)"
      filter = "metric.type = \"run.googleapis.com/request_latencies\" AND ${local.monitoring_filter_functions}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = ["resource.label.service_name"] }
      plot   = "LINE"
    },
    {
      title  = "Reconciler repairs by kind (per 10 minutes)"
      filter = "metric.type = \"${local.log_metric_type.reconcile_repairs}\" AND resource.type = \"cloud_run_revision\""
      agg    = { alignmentPeriod = "600s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.kind"] }
      plot   = "STACKED_BAR"
    },
    {
      title  = "Rounds by state entered (per 10 minutes)"
      filter = "metric.type = \"${local.log_metric_type.round_state_changes}\" AND resource.type = \"cloud_run_revision\""
      agg    = { alignmentPeriod = "600s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.to"] }
      plot   = "STACKED_BAR"
    },
    {
      title     = "Oldest open round (s)"
      filter    = "metric.type = \"${local.log_metric_type.oldest_open_round_age}\" AND resource.type = \"cloud_run_revision\""
      agg       = { alignmentPeriod = "600s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] }
      plot      = "LINE"
      threshold = local.round_expected_life_seconds
    },
    {
      title  = "Token refreshes refused with invalid_grant (per hour)"
      filter = "metric.type = \"${local.log_metric_type.token_refresh_failures}\" AND resource.type = \"cloud_run_revision\""
      agg    = { alignmentPeriod = "3600s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.service_name"] }
      plot   = "STACKED_BAR"
    },
  ]

  # Two charts a row on the 48-column grid.
  dashboard_tiles = [for i, c in local.dashboard_charts : {
    xPos   = (i % 2) * 24
    yPos   = floor(i / 2) * 16
    width  = 24
    height = 16
    widget = {
      title = c.title
      xyChart = {
        dataSets = [{
          plotType = c.plot
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter      = c.filter
              aggregation = c.agg
            }
          }
        }]
        # The alert's threshold, where the chart has one.
        thresholds        = try(c.threshold, null) == null ? [] : [{ value = c.threshold, label = "alert" }]
        timeshiftDuration = "0s"
        yAxis             = { scale = "LINEAR" }
      }
    }
  }]
}

resource "google_monitoring_dashboard" "pipeline" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName  = "Portability pipeline"
    mosaicLayout = { columns = 48, tiles = local.dashboard_tiles }
  })

  depends_on = [google_project_service.services]
}
