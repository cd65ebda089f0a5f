# Shared by every scenario: the provider authenticates against Keystone
# from the OS_* environment (clouds.yaml works too) and reaches Neutrino
# through endpoint_overrides, as a deployment whose catalog points
# elsewhere would.
terraform {
  required_providers {
    openstack = {
      source = "terraform-provider-openstack/openstack"
    }
  }
}

variable "network_url" {
  type = string
}

variable "external_network_id" {
  type = string
}

# Every scenario changes in place when suffix changes.
variable "suffix" {
  type    = string
  default = "one"
}

provider "openstack" {
  endpoint_overrides = {
    network = var.network_url
  }
}
