# tflint core rules only: the google ruleset plugin cannot be fetched offline.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
