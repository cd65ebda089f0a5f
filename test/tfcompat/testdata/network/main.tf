# The network resources as Terraform users write them: a network with a
# subnet, a port on the subnet's gateway address attached to a router by
# port, a VM port with a security group and allowed address pairs, a
# floating IP, a subnet pool in an address scope with default_quota and a
# subnet allocated from it, and a trunk. Every attribute changed by
# suffix is updatable in place in the reference.

locals {
  two = var.suffix != "one"
}

resource "openstack_networking_network_v2" "net" {
  name           = "tf-net-${var.suffix}"
  description    = "network ${var.suffix}"
  admin_state_up = true
  mtu            = local.two ? 1400 : 1450
  tags           = ["tf", var.suffix]
}

resource "openstack_networking_subnet_v2" "sub" {
  name            = "tf-sub-${var.suffix}"
  network_id      = openstack_networking_network_v2.net.id
  cidr            = "10.50.0.0/24"
  ip_version      = 4
  dns_nameservers = local.two ? ["10.50.0.54"] : ["10.50.0.53"]
  enable_dhcp     = false
  tags            = ["tf"]

  allocation_pool {
    start = "10.50.0.10"
    end   = local.two ? "10.50.0.210" : "10.50.0.200"
  }
}

resource "openstack_networking_port_v2" "gateway" {
  name       = "tf-gateway-${var.suffix}"
  network_id = openstack_networking_network_v2.net.id

  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.sub.id
    ip_address = openstack_networking_subnet_v2.sub.gateway_ip
  }
}

resource "openstack_networking_router_v2" "router" {
  name                = "tf-router-${var.suffix}"
  description         = "router ${var.suffix}"
  external_network_id = var.external_network_id
}

resource "openstack_networking_router_interface_v2" "gateway" {
  router_id = openstack_networking_router_v2.router.id
  port_id   = openstack_networking_port_v2.gateway.id
}

resource "openstack_networking_secgroup_v2" "web" {
  name        = "tf-web-${var.suffix}"
  description = "web ${var.suffix}"
  tags        = ["tf"]
}

resource "openstack_networking_secgroup_rule_v2" "http" {
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 80
  port_range_max    = 80
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.web.id
}

resource "openstack_networking_secgroup_rule_v2" "icmp" {
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "icmp"
  remote_group_id   = openstack_networking_secgroup_v2.web.id
  security_group_id = openstack_networking_secgroup_v2.web.id
}

resource "openstack_networking_port_v2" "vm" {
  name               = "tf-vm-${var.suffix}"
  network_id         = openstack_networking_network_v2.net.id
  security_group_ids = [openstack_networking_secgroup_v2.web.id]
  tags               = ["tf", var.suffix]

  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.sub.id
    ip_address = "10.50.0.20"
  }

  allowed_address_pairs {
    ip_address = local.two ? "10.50.0.144/28" : "10.50.0.128/28"
  }
}

resource "openstack_networking_floatingip_v2" "vm" {
  pool        = "tf-public"
  port_id     = openstack_networking_port_v2.vm.id
  description = "fip ${var.suffix}"
  depends_on  = [openstack_networking_router_interface_v2.gateway]
}

resource "openstack_networking_addressscope_v2" "scope" {
  name       = "tf-scope-${var.suffix}"
  ip_version = 4
}

resource "openstack_networking_subnetpool_v2" "pool" {
  name              = "tf-pool-${var.suffix}"
  description       = "pool ${var.suffix}"
  prefixes          = ["10.80.0.0/16"]
  default_prefixlen = 26
  min_prefixlen     = 24
  max_prefixlen     = 28
  default_quota     = local.two ? 2048 : 1024
  address_scope_id  = openstack_networking_addressscope_v2.scope.id
  tags              = ["tf"]
}

resource "openstack_networking_network_v2" "pooled" {
  name = "tf-pooled-${var.suffix}"
}

resource "openstack_networking_subnet_v2" "pooled" {
  name          = "tf-pooled-${var.suffix}"
  network_id    = openstack_networking_network_v2.pooled.id
  subnetpool_id = openstack_networking_subnetpool_v2.pool.id
  prefix_length = 26
  enable_dhcp   = false
}

resource "openstack_networking_port_v2" "parent" {
  name       = "tf-parent-${var.suffix}"
  network_id = openstack_networking_network_v2.net.id
}

resource "openstack_networking_port_v2" "child" {
  name       = "tf-child-${var.suffix}"
  network_id = openstack_networking_network_v2.pooled.id
  depends_on = [openstack_networking_subnet_v2.pooled]
}

resource "openstack_networking_trunk_v2" "trunk" {
  name           = "tf-trunk-${var.suffix}"
  description    = "trunk ${var.suffix}"
  port_id        = openstack_networking_port_v2.parent.id
  admin_state_up = true

  sub_port {
    port_id           = openstack_networking_port_v2.child.id
    segmentation_type = "vlan"
    segmentation_id   = 101
  }
}
