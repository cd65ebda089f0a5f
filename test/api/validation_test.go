package api_test

import (
	"strings"
	"testing"
)

// TestValidationErrors sends bad input to every resource and checks the
// reference's status, fault type and message, and that nothing changed.
func TestValidationErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": "n"}})
		netID := net.body["network"].(map[string]any)["id"].(string)
		sub := e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.0.0.0/24"}})
		subID := sub.body["subnet"].(map[string]any)["id"].(string)
		rtr := e.do("POST", "/v2.0/routers", projectA, map[string]any{"router": map[string]any{"name": "r"}})
		rtrID := rtr.body["router"].(map[string]any)["id"].(string)
		const missing = "3f1c1b7e-6a9b-4d6e-9a54-0123456789ab"
		big := `{"network": {"name": "` + strings.Repeat("x", 2<<20) + `"}}`

		cases := []faultCase{
			{"malformed json", "POST", "/v2.0/networks", `{"network": {`, 400, "HTTPBadRequest", "Malformed request body"},
			{"trailing garbage", "POST", "/v2.0/networks", `{"network": {}} x`, 400, "HTTPBadRequest", "Malformed request body"},
			{"empty body", "POST", "/v2.0/networks", ``, 400, "HTTPBadRequest", "Resource body required"},
			{"missing envelope", "POST", "/v2.0/networks", map[string]any{"net": map[string]any{}}, 400, "HTTPBadRequest", "Unable to find 'network' in request body"},
			{"envelope not object", "POST", "/v2.0/networks", map[string]any{"network": 5}, 400, "HTTPBadRequest", "Unable to find 'network' in request body"},
			{"bulk item invalid", "POST", "/v2.0/networks", map[string]any{"networks": []any{map[string]any{}, map[string]any{"foo": 1}}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'"},
			{"unknown attribute", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"foo": 1, "bar": 2}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'bar, foo'"},
			{"read-only in POST", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"status": "DOWN"}}, 400, "HTTPBadRequest", "Attribute 'status' not allowed in POST"},
			{"read-only in PUT", "PUT", "/v2.0/subnets/" + subID, map[string]any{"subnet": map[string]any{"cidr": "10.9.0.0/24"}}, 400, "HTTPBadRequest", "Cannot update read-only attribute cidr"},
			{"missing required", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"ip_version": 4, "cidr": "10.1.0.0/24"}}, 400, "HTTPBadRequest", "Failed to parse request. Required attribute 'network_id' not specified"},
			{"wrong type bool", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"admin_state_up": "maybe"}}, 400, "HTTPBadRequest", "'maybe' cannot be converted to boolean"},
			{"null bool", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"admin_state_up": nil}}, 400, "HTTPBadRequest", "'None' cannot be converted to boolean"},
			{"name too long", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": strings.Repeat("n", 256)}}, 400, "HTTPBadRequest", "exceeds maximum length of 255"},
			{"name not string", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": 7}}, 400, "HTTPBadRequest", "Invalid input for name. Reason: '7' is not a valid string."},
			{"mtu not int", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"mtu": "big"}}, 400, "HTTPBadRequest", "'big' is not an integer"},
			{"mtu too big", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"mtu": 9000}}, 400, "InvalidInput", "Requested MTU is too big, maximum is 1450"},
			{"project mismatch", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"project_id": "a", "tenant_id": "b"}}, 400, "HTTPBadRequest", "'project_id' and 'tenant_id' do not match"},
			{"other project", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"project_id": projectB}}, 400, "HTTPBadRequest", "other than the authenticated project in request requires admin"},
			{"bad uuid", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": "nope", "ip_version": 4, "cidr": "10.1.0.0/24"}}, 400, "HTTPBadRequest", "Invalid input for network_id. Reason: 'nope' is not a valid UUID."},
			{"network missing", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": missing, "ip_version": 4, "cidr": "10.1.0.0/24"}}, 404, "NetworkNotFound", missing},
			{"bad ip_version", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 5, "cidr": "10.1.0.0/24"}}, 400, "HTTPBadRequest", "5 is not in valid_values"},
			{"bad cidr", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "1.0.0.0/33"}}, 400, "HTTPBadRequest", "'1.0.0.0/33' is not a valid IP subnet"},
			{"cidr without length", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.1.0.0"}}, 400, "HTTPBadRequest", "isn't a recognized IP subnet cidr"},
			{"version mismatch", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 6, "cidr": "10.1.0.0/24"}}, 400, "InvalidInput", "not compatible"},
			{"no cidr", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4}}, 400, "BadRequest", "a cidr must be specified"},
			{"overlap", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.0.0.0/25"}}, 400, "InvalidInput", "overlaps with another subnet"},
			{"bad gateway", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.300"}}, 400, "HTTPBadRequest", "'10.1.0.300' is not a valid IP address"},
			{"pool keys", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": []any{map[string]any{"start": "10.1.0.5", "stop": "10.1.0.9"}}}}, 400, "HTTPBadRequest", "Unexpected keys supplied: stop"},
			{"dns not ip", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.1.0.0/24", "dns_nameservers": []any{"resolver"}}}, 400, "HTTPBadRequest", "'resolver' is not a valid IP address"},
			{"slaac not /64", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 6, "cidr": "2001:db8::/80", "ipv6_address_mode": "slaac"}}, 400, "InvalidInput", "requires the prefix to be /64"},
			{"v6 mode on v4", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.1.0.0/24", "ipv6_ra_mode": "slaac"}}, 400, "InvalidInput", "ipv6_ra_mode set to 'slaac' with ip_version set to '4' is not valid"},
			{"bad mac", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "mac_address": "zz:zz"}}, 400, "HTTPBadRequest", "'zz:zz' is not a valid MAC address"},
			{"multicast mac", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "mac_address": "01:00:5e:00:00:01"}}, 400, "HTTPBadRequest", "is not a valid MAC address"},
			{"fixed ip outside", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"subnet_id": subID, "ip_address": "10.5.0.5"}}}}, 400, "InvalidIpForSubnet", "10.5.0.5"},
			{"fixed ip broadcast", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.255"}}}}, 400, "InvalidIpForSubnet", "10.0.0.255"},
			{"fixed ip empty entry", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{}}}}, 400, "HTTPBadRequest", "Invalid input for fixed_ips"},
			{"fixed ip unknown key", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"ip": "10.0.0.9"}}}}, 400, "HTTPBadRequest", "Unexpected keys supplied: ip"},
			{"subnet of other network", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"subnet_id": missing}}}}, 404, "SubnetNotFound", missing},
			{"pair without ip", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "allowed_address_pairs": []any{map[string]any{"mac_address": "fa:16:3e:00:00:01"}}}}, 400, "HTTPBadRequest", "AllowedAddressPair must contain ip_address"},
			{"pair bad ip", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.0/99"}}}}, 400, "HTTPBadRequest", "is not a valid IP subnet"},
			{"pair duplicate", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}, map[string]any{"ip_address": "10.0.0.50"}}}}, 400, "DuplicateAddressPairInRequest", "10.0.0.50"},
			{"pair without port security", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "port_security_enabled": false, "allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}}}}, 409, "AddressPairAndPortSecurityRequired", ""},
			{"groups without port security", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "port_security_enabled": false, "security_groups": []any{missing}}}, 400, "PortSecurityAndIPRequiredForSecurityGroups", ""},
			{"unknown group", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "security_groups": []any{missing}}}, 404, "SecurityGroupNotFound", missing},
			{"binding profile not dict", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "binding:profile": "x"}}, 400, "HTTPBadRequest", "'x' is not a dictionary"},
			{"bad vnic type", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "binding:vnic_type": "warp"}}, 400, "HTTPBadRequest", "warp is not in valid_values"},
			{"gateway not external", "PUT", "/v2.0/routers/" + rtrID, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": netID}}}, 400, "BadRequest", "is not an external network"},
			{"gateway without network", "PUT", "/v2.0/routers/" + rtrID, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"enable_snat": true}}}, 400, "HTTPBadRequest", "Expected keys"},
			{"enable_snat by member", "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": netID, "enable_snat": false}}}, 403, "PolicyNotAuthorized", "enable_snat"},
			{"routes not list", "PUT", "/v2.0/routers/" + rtrID, map[string]any{"router": map[string]any{"routes": "x"}}, 400, "HTTPBadRequest", "'x' is not a list"},
			{"routes in POST", "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"routes": []any{}}}, 400, "HTTPBadRequest", "Attribute 'routes' not allowed in POST"},
			{"interface bad uuid", "PUT", "/v2.0/routers/" + rtrID + "/add_router_interface", map[string]any{"subnet_id": "x"}, 400, "HTTPBadRequest", "'x' is not a valid UUID"},
			{"interface no gateway", "PUT", "/v2.0/routers/" + missing + "/add_router_interface", map[string]any{"subnet_id": subID}, 404, "RouterNotFound", missing},
			{"rule direction", "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": missing, "direction": "sideways"}}, 400, "HTTPBadRequest", "sideways is not in valid_values"},
			{"rule protocol", "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": missing, "direction": "ingress", "protocol": "carrier-pigeon"}}, 400, "SecurityGroupRuleInvalidProtocol", "carrier-pigeon"},
			{"rule port without protocol", "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": missing, "direction": "ingress", "port_range_min": 22}}, 400, "SecurityGroupProtocolRequiredWithPorts", ""},
			{"rule port range", "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": missing, "direction": "ingress", "protocol": "tcp", "port_range_min": 70000}}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port 70000"},
			{"rule remote both", "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": missing, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": missing}}, 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix", ""},
			{"quota negative", "PUT", "/v2.0/quotas/" + projectA, map[string]any{"quota": map[string]any{"network": -5}}, 400, "HTTPBadRequest", "must be at least '-1'"},
			{"sort key invalid", "GET", "/v2.0/networks?sort_key=bogus&sort_dir=asc", nil, 400, "HTTPBadRequest", "['bogus'] is invalid attribute for sort_keys"},
			{"sort dir invalid", "GET", "/v2.0/networks?sort_key=name&sort_dir=up", nil, 400, "HTTPBadRequest", "is invalid value for sort_dirs"},
			{"sort count", "GET", "/v2.0/networks?sort_key=name", nil, 400, "HTTPBadRequest", "The number of sort_keys and sort_dirs must be same"},
			{"limit invalid", "GET", "/v2.0/networks?limit=-1", nil, 400, "HTTPBadRequest", "Limit must be an integer 0 or greater and not '-1'"},
			{"bool filter invalid", "GET", "/v2.0/networks?shared=perhaps", nil, 400, "HTTPBadRequest", "cannot be converted to boolean"},
			{"unknown path", "GET", "/v2.0/floatingips-nope", nil, 404, "HTTPNotFound", ""},
			{"method not allowed", "PATCH", "/v2.0/networks/" + netID, map[string]any{}, 405, "HTTPMethodNotAllowed", ""},
			{"body too large", "POST", "/v2.0/networks", big, 413, "HTTPRequestEntityTooLarge", ""},
			{"non-uuid id is a 404", "GET", "/v2.0/networks/net1", nil, 404, "NetworkNotFound", "net1"},
		}
		runFaultCases(t, e, cases, snapshot, "")
	})
}

// snapshot summarises everything the admin can see, to prove that rejected
// requests wrote nothing.
func snapshot(e *env) string {
	var b strings.Builder
	for _, coll := range []string{"networks", "subnets", "ports", "routers", "security-groups", "security-group-rules"} {
		r := e.do("GET", "/v2.0/"+coll, "", nil)
		b.WriteString(coll + "=" + r.raw)
	}
	return b.String()
}

// TestNetworkMTUMinimum follows the reference's MTU rules on both stores:
// a network may have any non-negative MTU within its segment's, but an
// IPv4 subnet needs 68 and an IPv6 subnet 1280, on create (the subnet is
// refused) and on update (the MTU is refused), with the reference's 409;
// the refusals change nothing.
func TestNetworkMTUMinimum(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		low4 := e.create(projectA, "networks", map[string]any{"name": "low4", "mtu": 67})
		low6 := e.create(projectA, "networks", map[string]any{"name": "low6", "mtu": 1279})
		ok := e.create(projectA, "networks", map[string]any{"name": "ok", "mtu": 1400})
		e.create(projectA, "subnets", map[string]any{"network_id": ok, "ip_version": 4, "cidr": "10.70.0.0/24"})
		e.create(projectA, "subnets", map[string]any{"network_id": ok, "ip_version": 6, "cidr": "fd70::/64"})
		e.create(projectA, "subnets", map[string]any{"network_id": low6, "ip_version": 4, "cidr": "10.71.0.0/24"})
		snapshot := func(e *env) string {
			return e.do("GET", "/v2.0/networks?sort_key=name", "", nil).raw + e.do("GET", "/v2.0/subnets?sort_key=cidr", "", nil).raw
		}
		runFaultCases(t, e, []faultCase{
			{"IPv4 subnet on MTU 67", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
				"network_id": low4, "ip_version": 4, "cidr": "10.72.0.0/24"}}, 409, "NetworkMTUSubnetConflict", "subnet requires a minimum of 68"},
			{"IPv6 subnet on MTU 1279", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
				"network_id": low6, "ip_version": 6, "cidr": "fd72::/64"}}, 409, "NetworkMTUSubnetConflict", "subnet requires a minimum of 1280"},
			{"MTU below IPv4's with an IPv4 subnet", "PUT", "/v2.0/networks/" + ok, map[string]any{"network": map[string]any{"mtu": 67}},
				409, "NetworkMTUSubnetConflict", "minimum of 68"},
			{"MTU below IPv6's with an IPv6 subnet", "PUT", "/v2.0/networks/" + ok, map[string]any{"network": map[string]any{"mtu": 1279}},
				409, "NetworkMTUSubnetConflict", "minimum of 1280"},
			{"negative MTU", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "neg", "mtu": -1}},
				400, "HTTPBadRequest", "should be non-negative"},
		}, snapshot, "")
		// Without subnets of that version, the MTU may go low.
		if r := e.do("PUT", "/v2.0/networks/"+low6, projectA, map[string]any{"network": map[string]any{"mtu": 1000}}); r.status != 200 {
			t.Fatalf("MTU 1000 with only an IPv4 subnet: %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", "/v2.0/networks/"+low4, projectA, map[string]any{"network": map[string]any{"mtu": 1450}}); r.status != 200 {
			t.Fatalf("raise MTU: %d %s", r.status, r.raw)
		}
		e.create(projectA, "subnets", map[string]any{"network_id": low4, "ip_version": 4, "cidr": "10.72.0.0/24"})
	})
}
