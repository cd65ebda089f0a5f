# The VPN resources as Terraform users write them: IKE and IPsec
# policies, a VPN service on a router with a gateway, endpoint groups
# and a site connection. The connection is updated right after it is
# created, while no agent has acted on it (the reference refuses that).

locals {
  two = var.suffix != "one"
}

resource "openstack_networking_network_v2" "net" {
  name = "tf-vpn-net-${var.suffix}"
}

resource "openstack_networking_subnet_v2" "sub" {
  name        = "tf-vpn-sub-${var.suffix}"
  network_id  = openstack_networking_network_v2.net.id
  cidr        = "10.60.0.0/24"
  enable_dhcp = false
}

resource "openstack_networking_router_v2" "router" {
  name                = "tf-vpn-router-${var.suffix}"
  external_network_id = var.external_network_id
}

resource "openstack_networking_router_interface_v2" "sub" {
  router_id = openstack_networking_router_v2.router.id
  subnet_id = openstack_networking_subnet_v2.sub.id
}

# The policies a connection uses cannot change while it uses them (the
# reference's IKEPolicyInUse/IPsecPolicyInUse, 409); a spare pair that no
# connection uses is updated in place instead.
resource "openstack_vpnaas_ike_policy_v2" "ike" {
  name                 = "tf-ike"
  auth_algorithm       = "sha256"
  encryption_algorithm = "aes-256"
  pfs                  = "group14"
  ike_version          = "v2"

  lifetime {
    units = "seconds"
    value = 3600
  }
}

resource "openstack_vpnaas_ipsec_policy_v2" "ipsec" {
  name                 = "tf-ipsec"
  auth_algorithm       = "sha256"
  encryption_algorithm = "aes-256"
  pfs                  = "group14"
  transform_protocol   = "esp"
  encapsulation_mode   = "tunnel"

  lifetime {
    units = "seconds"
    value = 3600
  }
}

resource "openstack_vpnaas_ike_policy_v2" "spare" {
  name                 = "tf-ike-spare-${var.suffix}"
  description          = "spare ${var.suffix}"
  auth_algorithm       = local.two ? "sha384" : "sha256"
  encryption_algorithm = "aes-256"
  pfs                  = "group14"
  ike_version          = local.two ? "v1" : "v2"

  lifetime {
    units = "seconds"
    value = local.two ? 7200 : 3600
  }
}

resource "openstack_vpnaas_ipsec_policy_v2" "spare" {
  name                 = "tf-ipsec-spare-${var.suffix}"
  auth_algorithm       = "sha256"
  encryption_algorithm = local.two ? "aes-128" : "aes-256"
  pfs                  = local.two ? "group15" : "group14"
  transform_protocol   = "esp"
  encapsulation_mode   = "tunnel"

  lifetime {
    units = "seconds"
    value = local.two ? 1800 : 3600
  }
}

resource "openstack_vpnaas_service_v2" "vpn" {
  name           = "tf-vpn-${var.suffix}"
  description    = "vpn ${var.suffix}"
  router_id      = openstack_networking_router_v2.router.id
  admin_state_up = true
  depends_on     = [openstack_networking_router_interface_v2.sub]
}

resource "openstack_vpnaas_endpoint_group_v2" "local" {
  name      = "tf-local-${var.suffix}"
  type      = "subnet"
  endpoints = [openstack_networking_subnet_v2.sub.id]
}

resource "openstack_vpnaas_endpoint_group_v2" "peer" {
  name      = "tf-peer-${var.suffix}"
  type      = "cidr"
  endpoints = ["192.168.70.0/24"]
}

resource "openstack_vpnaas_site_connection_v2" "office" {
  name              = "tf-office-${var.suffix}"
  description       = "office ${var.suffix}"
  ikepolicy_id      = openstack_vpnaas_ike_policy_v2.ike.id
  ipsecpolicy_id    = openstack_vpnaas_ipsec_policy_v2.ipsec.id
  vpnservice_id     = openstack_vpnaas_service_v2.vpn.id
  local_ep_group_id = openstack_vpnaas_endpoint_group_v2.local.id
  peer_ep_group_id  = openstack_vpnaas_endpoint_group_v2.peer.id
  peer_address      = "203.0.113.70"
  peer_id           = "203.0.113.70"
  psk               = local.two ? "tf-secret-two" : "tf-secret-one"
  mtu               = local.two ? 1400 : 1500
  initiator         = local.two ? "response-only" : "bi-directional"
  admin_state_up    = true

  dpd {
    action   = local.two ? "restart" : "hold"
    interval = 30
    timeout  = 120
  }
}
