# tflint's bundled terraform ruleset, every rule (no plugin download).
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
