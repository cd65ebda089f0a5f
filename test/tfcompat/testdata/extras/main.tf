# Everyday patterns beyond single resources: data sources looking up what
# an operator or another configuration made, an IPv6 SLAAC subnet beside
# IPv4, a router's extra routes as their own resource, a floating IP
# associated separately, a subnet's host route as its own resource, a port without port security, and a port with
# extra DHCP options.

locals {
  two = var.suffix != "one"
}

data "openstack_networking_network_v2" "public" {
  network_id = var.external_network_id
}

data "openstack_networking_secgroup_v2" "default" {
  name = "default"
}

resource "openstack_networking_network_v2" "net" {
  name                  = "tf-x-net-${var.suffix}"
  port_security_enabled = true
}

resource "openstack_networking_subnet_v2" "v4" {
  name        = "tf-x-v4-${var.suffix}"
  network_id  = openstack_networking_network_v2.net.id
  cidr        = "10.90.0.0/24"
  enable_dhcp = true
}

resource "openstack_networking_subnet_route_v2" "v4" {
  subnet_id        = openstack_networking_subnet_v2.v4.id
  destination_cidr = "10.99.0.0/16"
  next_hop         = "10.90.0.5"
}

resource "openstack_networking_subnet_v2" "v6" {
  name              = "tf-x-v6-${var.suffix}"
  network_id        = openstack_networking_network_v2.net.id
  cidr              = "fd90::/64"
  ip_version        = 6
  ipv6_ra_mode      = "slaac"
  ipv6_address_mode = "slaac"
}

data "openstack_networking_subnet_v2" "v4" {
  subnet_id = openstack_networking_subnet_v2.v4.id
}

resource "openstack_networking_router_v2" "router" {
  name                = "tf-x-router-${var.suffix}"
  external_network_id = data.openstack_networking_network_v2.public.id
}

resource "openstack_networking_router_interface_v2" "v4" {
  router_id = openstack_networking_router_v2.router.id
  subnet_id = openstack_networking_subnet_v2.v4.id
}

resource "openstack_networking_router_interface_v2" "v6" {
  router_id = openstack_networking_router_v2.router.id
  subnet_id = openstack_networking_subnet_v2.v6.id
}

resource "openstack_networking_router_route_v2" "office" {
  router_id        = openstack_networking_router_v2.router.id
  destination_cidr = "10.98.0.0/16"
  next_hop         = "10.90.0.50"
  depends_on       = [openstack_networking_router_interface_v2.v4]
}

resource "openstack_networking_port_v2" "vm" {
  name               = "tf-x-vm-${var.suffix}"
  network_id         = openstack_networking_network_v2.net.id
  security_group_ids = [data.openstack_networking_secgroup_v2.default.id]
  depends_on         = [openstack_networking_subnet_v2.v4, openstack_networking_subnet_v2.v6]

  extra_dhcp_option {
    name  = "domain-search"
    value = local.two ? "two.example" : "one.example"
  }
}

resource "openstack_networking_port_v2" "appliance" {
  name                  = "tf-x-appliance-${var.suffix}"
  network_id            = openstack_networking_network_v2.net.id
  port_security_enabled = false
  no_security_groups    = true
  depends_on            = [openstack_networking_subnet_v2.v4]
}

resource "openstack_networking_floatingip_v2" "fip" {
  pool        = data.openstack_networking_network_v2.public.name
  description = "x ${var.suffix}"
}

resource "openstack_networking_floatingip_associate_v2" "fip" {
  floating_ip = openstack_networking_floatingip_v2.fip.address
  port_id     = openstack_networking_port_v2.vm.id
  depends_on  = [openstack_networking_router_interface_v2.v4]
}
