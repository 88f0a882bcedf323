# Provider-free on purpose: `terraform test` runs this module without downloading a provider.
terraform {
  required_version = ">= 1.11.0, < 2.0.0"
}
