// Package tfcompat runs OpenTofu with terraform-provider-openstack against
// Neutrino behind a real Keystone, as Terraform users run it: every
// scenario (testdata/<name>/main.tf) goes apply → plan shows no changes →
// in-place update → plan shows no changes → destroy, and the API is
// checked between the steps.
//
// It needs the tofu binary and the provider built from the Go module
// proxy; scripts/tfcompat.sh builds both, starts Keystone and runs this
// package (build tag tfcompat). See docs/dev/terraform.md.
package tfcompat
