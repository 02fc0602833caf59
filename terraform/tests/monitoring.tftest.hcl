# Alerts, dashboard and log-based metrics of monitoring.tf, and the webhook's subscriptions they watch
# (pubsub.tf), planned against mock providers (offline: check.sh runs `terraform test` with the provider
# mirror it builds). Plan mode: nothing is created, and every value asserted here is known at plan time.

mock_provider "google" {
  source = "./tests/mocks"
}

mock_provider "archive" {}

variables {
  project_id      = "pp-test"
  oauth_client_id = "123-abc.apps.googleusercontent.com"
  bucket_name     = "pp-test-archives"
  notification_channels = [
    "projects/pp-test/notificationChannels/111",
    "projects/pp-test/notificationChannels/222",
  ]
}

run "alerts_notify_the_channels_and_link_their_runbooks" {
  command = plan

  assert {
    condition     = contains(keys(google_project_service.services), "monitoring.googleapis.com")
    error_message = "The monitoring API is not enabled."
  }

  # Every alert the issue lists (a missing one fails this file: the key does not resolve), and no other.
  assert {
    condition = alltrue([for k in [
      "dead_letter_backlog",
      "push_oldest_unacked",
      "function_5xx",
      "reconciler_repairs",
      "reconciler_silent",
      "token_refresh_failures",
      "oldest_open_round",
    ] : google_monitoring_alert_policy.alert[k].notification_channels == var.notification_channels])
    error_message = "An alert does not notify var.notification_channels."
  }
  assert {
    condition     = length(google_monitoring_alert_policy.alert) == 7
    error_message = "An alert this file does not know: add it to the list above, with its runbook."
  }

  # Each runbook link is under runbook_base_url, repeated in the text, and names a file in docs/runbooks.
  assert {
    condition = alltrue([for p in values(google_monitoring_alert_policy.alert) : length(p.documentation) == 1 &&
      p.documentation[0].mime_type == "text/markdown" &&
      length(p.documentation[0].links) == 1 &&
      startswith(p.documentation[0].links[0].url, "${var.runbook_base_url}/") &&
      strcontains(p.documentation[0].content, "Runbook: ${p.documentation[0].links[0].url}") &&
      fileexists("${path.module}/../docs/runbooks/${basename(p.documentation[0].links[0].url)}")
    ])
    error_message = "An alert's documentation lacks its runbook link, or the runbook is not in docs/runbooks."
  }

  # One runbook per alert.
  assert {
    condition     = length(distinct([for p in values(google_monitoring_alert_policy.alert) : p.documentation[0].links[0].url])) == 7
    error_message = "Two alerts share a runbook."
  }

  # One condition each: reconciler_silent an absence, the others a threshold; only function_5xx a ratio.
  assert {
    condition = alltrue([for k, p in google_monitoring_alert_policy.alert : length(p.conditions) == 1 && (
      k == "reconciler_silent" ?
      length(p.conditions[0].condition_absent) == 1 && length(p.conditions[0].condition_threshold) == 0 :
      length(p.conditions[0].condition_absent) == 0 && length(p.conditions[0].condition_threshold) == 1 &&
      (length(p.conditions[0].condition_threshold[0].denominator_aggregations) == 1) == (k == "function_5xx")
    )])
    error_message = "An alert's condition is not of its kind (absence, threshold, ratio)."
  }

  # Without the webhook: the four dead-letter and push subscriptions, exactly.
  assert {
    condition     = strcontains(google_monitoring_alert_policy.alert["dead_letter_backlog"].conditions[0].condition_threshold[0].filter, "monitoring.regex.full_match(\"archive-jobs-dead-letter|initiate-requests-dead-letter|reset-requests-dead-letter|transfer-parts-dead-letter\")")
    error_message = "The dead-letter alert does not watch exactly the four dead-letter subscriptions."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.alert["push_oldest_unacked"].conditions[0].condition_threshold[0].filter, "monitoring.regex.full_match(\"archive-jobs-push|initiate-requests-push|reset-requests-push|transfer-parts-push\")")
    error_message = "The oldest-unacked alert does not watch exactly the four push subscriptions."
  }
  assert {
    condition = (
      google_monitoring_alert_policy.alert["dead_letter_backlog"].conditions[0].condition_threshold[0].threshold_value == 0 &&
      google_monitoring_alert_policy.alert["push_oldest_unacked"].conditions[0].condition_threshold[0].threshold_value == 1800 &&
      strcontains(google_monitoring_alert_policy.alert["push_oldest_unacked"].conditions[0].condition_threshold[0].filter, "subscription/oldest_unacked_message_age")
    )
    error_message = "The Pub/Sub alerts' thresholds or metrics are not the documented defaults."
  }

  # 5xx: a ratio of 5xx answers to all answers, per function service.
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].filter, "metric.label.response_code_class = \"5xx\"") &&
      !strcontains(google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].denominator_filter, "response_code_class") &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].threshold_value == 0.1 &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].duration == "900s" &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].aggregations[0].group_by_fields == tolist(["resource.label.service_name"]) &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].denominator_aggregations[0].group_by_fields == tolist(["resource.label.service_name"])
    )
    error_message = "The 5xx alert is not a per-service ratio of 5xx to all requests."
  }

  # The reconciler and token alerts read the log-based metrics.
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.alert["reconciler_repairs"].conditions[0].condition_threshold[0].filter, "metric.type = \"logging.googleapis.com/user/${google_logging_metric.reconcile_repairs.name}\"") &&
      google_monitoring_alert_policy.alert["reconciler_repairs"].conditions[0].condition_threshold[0].threshold_value == 0 &&
      google_monitoring_alert_policy.alert["reconciler_repairs"].conditions[0].condition_threshold[0].duration == "3600s"
    )
    error_message = "The repairs alert is not 'repairs above zero for an hour' on the repairs metric."
  }
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.alert["token_refresh_failures"].conditions[0].condition_threshold[0].filter, "metric.type = \"logging.googleapis.com/user/${google_logging_metric.token_refresh_failures.name}\"") &&
      google_monitoring_alert_policy.alert["token_refresh_failures"].conditions[0].condition_threshold[0].aggregations[0].alignment_period == "3600s"
    )
    error_message = "The token alert does not count the invalid_grant metric per hour."
  }
  assert {
    condition = (
      strcontains(google_monitoring_alert_policy.alert["oldest_open_round"].conditions[0].condition_threshold[0].filter, "metric.type = \"logging.googleapis.com/user/${google_logging_metric.oldest_open_round_age.name}\"") &&
      google_monitoring_alert_policy.alert["oldest_open_round"].conditions[0].condition_threshold[0].threshold_value == 360 * 3600 &&
      strcontains(google_monitoring_alert_policy.alert["reconciler_silent"].conditions[0].condition_absent[0].filter, "logging.googleapis.com/user/${google_logging_metric.oldest_open_round_age.name}") &&
      google_monitoring_alert_policy.alert["reconciler_silent"].conditions[0].condition_absent[0].duration == "1800s"
    )
    error_message = "The round-age and reconciler-silent alerts do not read the summary metric with the default thresholds."
  }
}

run "log_metrics_match_the_agreed_lines" {
  command = plan

  assert {
    condition = (
      strcontains(google_logging_metric.reconcile_repairs.filter, "jsonPayload.message=\"reconcile.repair\"") &&
      google_logging_metric.reconcile_repairs.label_extractors == tomap({ kind = "EXTRACT(jsonPayload.kind)" }) &&
      [for l in google_logging_metric.reconcile_repairs.metric_descriptor[0].labels : l.key] == ["kind"]
    )
    error_message = "The repairs metric does not count reconcile.repair lines by kind."
  }
  assert {
    condition = (
      strcontains(google_logging_metric.oldest_open_round_age.filter, "jsonPayload.message=\"reconcile.summary\"") &&
      google_logging_metric.oldest_open_round_age.value_extractor == "EXTRACT(jsonPayload.oldestOpenRoundAgeSeconds)" &&
      google_logging_metric.oldest_open_round_age.metric_descriptor[0].value_type == "DISTRIBUTION" &&
      contains(google_logging_metric.oldest_open_round_age.bucket_options[0].explicit_buckets[0].bounds, 360 * 3600)
    )
    error_message = "The round-age metric does not read reconcile.summary, or the alert threshold is not a bucket bound."
  }
  assert {
    condition     = strcontains(google_logging_metric.token_refresh_failures.filter, "jsonPayload.message=\"token.refresh_failed\" AND jsonPayload.reason=\"invalid_grant\"")
    error_message = "The token metric does not count invalid_grant refresh failures."
  }
  assert {
    condition = (
      strcontains(google_logging_metric.round_state_changes.filter, "jsonPayload.event=\"round.state\"") &&
      google_logging_metric.round_state_changes.label_extractors == tomap({ to = "EXTRACT(jsonPayload.to)" })
    )
    error_message = "The round-state metric does not count round.state lines by the state entered."
  }
  # Only this pipeline's functions count.
  assert {
    condition = alltrue([for m in [
      google_logging_metric.reconcile_repairs,
      google_logging_metric.oldest_open_round_age,
      google_logging_metric.token_refresh_failures,
      google_logging_metric.round_state_changes,
    ] : startswith(m.filter, "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^portability-\" AND ")])
    error_message = "A log metric counts lines of other workloads too."
  }
}

run "dashboard_shows_backlogs_errors_latency_repairs_and_rounds" {
  command = plan

  assert {
    condition     = jsondecode(google_monitoring_dashboard.pipeline.dashboard_json).displayName == "Portability pipeline"
    error_message = "No dashboard."
  }
  # The charts the issue lists, each on its metric.
  assert {
    condition = alltrue([for want in [
      ["Pub/Sub backlog: push", "subscription/num_undelivered_messages"],
      ["Pub/Sub backlog: dead-letter", "subscription/num_undelivered_messages"],
      ["Function errors", "run.googleapis.com/request_count"],
      ["Function latency", "run.googleapis.com/request_latencies"],
      ["Reconciler repairs", "logging.googleapis.com/user/${google_logging_metric.reconcile_repairs.name}"],
      ["Rounds by state", "logging.googleapis.com/user/${google_logging_metric.round_state_changes.name}"],
      ] : length([for t in jsondecode(google_monitoring_dashboard.pipeline.dashboard_json).mosaicLayout.tiles : t
      if startswith(t.widget.title, want[0]) && strcontains(t.widget.xyChart.dataSets[0].timeSeriesQuery.timeSeriesFilter.filter, want[1])]) == 1
    ])
    error_message = "A chart is missing from the dashboard, or reads the wrong metric."
  }
  assert {
    condition = one([for t in jsondecode(google_monitoring_dashboard.pipeline.dashboard_json).mosaicLayout.tiles :
    t.widget.xyChart.dataSets[0].timeSeriesQuery.timeSeriesFilter.aggregation.groupByFields if startswith(t.widget.title, "Rounds by state")]) == ["metric.label.to"]
    error_message = "Rounds by state is not grouped by the state entered."
  }
  # Tiles fit the 48-column grid and do not overlap.
  assert {
    condition = alltrue(flatten([for i, a in jsondecode(google_monitoring_dashboard.pipeline.dashboard_json).mosaicLayout.tiles : [
      a.xPos + a.width <= 48,
      [for j, b in jsondecode(google_monitoring_dashboard.pipeline.dashboard_json).mosaicLayout.tiles :
      i == j || a.xPos + a.width <= b.xPos || b.xPos + b.width <= a.xPos || a.yPos + a.height <= b.yPos || b.yPos + b.height <= a.yPos]
    ]]))
    error_message = "Dashboard tiles overlap or leave the grid."
  }
}

run "webhook_subscriptions_are_watched_too" {
  command = plan

  variables {
    webhook_url = "https://app.example.com/hooks/portability"
  }

  assert {
    condition     = strcontains(google_monitoring_alert_policy.alert["dead_letter_backlog"].conditions[0].condition_threshold[0].filter, "monitoring.regex.full_match(\"archive-jobs-dead-letter|export-events-dead-letter|initiate-requests-dead-letter|reset-requests-dead-letter|transfer-parts-dead-letter\")")
    error_message = "The webhook's dead-letter subscription is not watched."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.alert["push_oldest_unacked"].conditions[0].condition_threshold[0].filter, "monitoring.regex.full_match(\"archive-jobs-push|export-events-webhook|initiate-requests-push|reset-requests-push|transfer-parts-push\")")
    error_message = "The webhook's push subscription is not watched."
  }
}

run "thresholds_follow_the_variables" {
  command = plan

  variables {
    alert_thresholds = {
      push_oldest_unacked_seconds     = 900
      function_5xx_ratio              = 0.25
      function_5xx_minutes            = 30
      token_refresh_failures_per_hour = 5
      round_expected_life_hours       = 50
      reconciler_silent_minutes       = 45
    }
    runbook_base_url = "https://wiki.example.com/portability/runbooks"
  }

  assert {
    condition = (
      google_monitoring_alert_policy.alert["push_oldest_unacked"].conditions[0].condition_threshold[0].threshold_value == 900 &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].threshold_value == 0.25 &&
      google_monitoring_alert_policy.alert["function_5xx"].conditions[0].condition_threshold[0].duration == "1800s" &&
      google_monitoring_alert_policy.alert["token_refresh_failures"].conditions[0].condition_threshold[0].threshold_value == 5 &&
      google_monitoring_alert_policy.alert["oldest_open_round"].conditions[0].condition_threshold[0].threshold_value == 180000 &&
      google_monitoring_alert_policy.alert["reconciler_silent"].conditions[0].condition_absent[0].duration == "2700s"
    )
    error_message = "An alert does not follow alert_thresholds."
  }
  # The new threshold is a bucket bound (the percentile the alert reads is exact there), the old one gone.
  assert {
    condition = (
      contains(google_logging_metric.oldest_open_round_age.bucket_options[0].explicit_buckets[0].bounds, 180000) &&
      !contains(google_logging_metric.oldest_open_round_age.bucket_options[0].explicit_buckets[0].bounds, 360 * 3600)
    )
    error_message = "The round-age threshold is not a bucket bound of the metric."
  }
  assert {
    condition     = google_monitoring_alert_policy.alert["oldest_open_round"].documentation[0].links[0].url == "https://wiki.example.com/portability/runbooks/oldest-open-round.md"
    error_message = "The runbook links do not follow runbook_base_url."
  }
}

run "notification_channels_must_be_channel_ids" {
  command = plan

  variables {
    notification_channels = ["ops@example.com"]
  }

  expect_failures = [var.notification_channels]
}

run "no_webhook_no_events_subscription" {
  command = plan

  assert {
    condition     = length(module.webhook) == 0 && sort(keys(google_pubsub_subscription.push)) == tolist(["initiate", "jobs", "reset", "transfer"])
    error_message = "Without webhook_url, export-events must have no subscription and no webhook function."
  }
  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : !s.enable_message_ordering])
    error_message = "The step topics' push subscriptions must not be ordered."
  }
}

run "the_webhook_is_pushed_export_events_in_order_with_a_dead_letter" {
  command = plan

  variables {
    webhook_url = "https://app.example.com/hooks/portability"
  }

  assert {
    condition = (google_pubsub_subscription.push["events"].name == "export-events-webhook" &&
      google_pubsub_subscription.push["events"].enable_message_ordering &&
    google_pubsub_subscription.push["events"].ack_deadline_seconds == 60)
    error_message = "export-events must be pushed to the webhook by export-events-webhook, ordered, with the function's 60 s deadline."
  }
  assert {
    condition = (google_pubsub_topic.dead_letter["events"].name == "export-events-dead-letter" &&
    google_pubsub_subscription.dead_letter["events"].name == "export-events-dead-letter")
    error_message = "The webhook's failed deliveries must go to export-events-dead-letter, kept in a pull subscription."
  }
  assert {
    condition     = contains(keys(google_cloud_run_v2_service_iam_member.invoker), "pubsub_push/events") && contains(keys(google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters), "events")
    error_message = "The push account must invoke the webhook, and the Pub/Sub agent publish its dead letters."
  }
  assert {
    condition     = alltrue([for k, s in google_pubsub_subscription.push : s.enable_message_ordering == (k == "events")])
    error_message = "Only the webhook's subscription is ordered."
  }
  assert {
    condition     = contains(keys(google_project_iam_member.functions_logs), "webhook") && contains(keys(google_project_iam_member.functions_trace), "webhook") && !contains(keys(google_project_iam_member.functions_firestore), "webhook")
    error_message = "The webhook's account must write logs and spans, and get no Firestore grant."
  }
}
