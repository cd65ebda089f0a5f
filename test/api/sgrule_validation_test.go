package api_test

import (
	"testing"
)

// TestSecurityGroupRulePortFaults checks the reference's answers to rules
// whose ports do not fit their protocol, and to a remote group that does
// not exist, as the reference's conformance suite sends them; none of them
// creates anything.
func TestSecurityGroupRulePortFaults(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/v2.0/security-groups", projectA, map[string]any{"security_group": map[string]any{"name": "web"}})
		sg := item(t, r, 201, "security_group")["id"].(string)
		const missing = "5e8cd3d6-7f3b-4a0e-9c77-0d4c1f1b2a3c"
		rule := func(kv ...any) map[string]any {
			m := map[string]any{"security_group_id": sg, "direction": "ingress"}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return map[string]any{"security_group_rule": m}
		}
		const path = "/v2.0/security-group-rules"
		const portRange = "For TCP/UDP protocols, port_range_min must be <= port_range_max"
		cases := []faultCase{
			{"tcp min above max", "POST", path, rule("protocol", "tcp", "port_range_min", 2000, "port_range_max", 1000), 400, "SecurityGroupInvalidPortRange", portRange},
			{"tcp min only", "POST", path, rule("protocol", "tcp", "port_range_min", 22), 400, "SecurityGroupInvalidPortRange", portRange},
			{"udp max only", "POST", path, rule("protocol", "udp", "port_range_max", 53), 400, "SecurityGroupInvalidPortRange", portRange},
			{"sctp min only", "POST", path, rule("protocol", "sctp", "port_range_min", 22), 400, "SecurityGroupInvalidPortRange", portRange},
			{"tcp port 0", "POST", path, rule("protocol", "tcp", "port_range_min", 0, "port_range_max", 10), 400, "SecurityGroupInvalidPortValue", "Invalid value for port 0"},
			{"tcp max 0", "POST", path, rule("protocol", "6", "port_range_min", 10, "port_range_max", 0), 400, "SecurityGroupInvalidPortValue", "Invalid value for port 0"},
			{"port above 65535", "POST", path, rule("protocol", "tcp", "port_range_min", 65536, "port_range_max", 65536), 400, "SecurityGroupInvalidPortValue", "Invalid value for port 65536"},
			{"negative port", "POST", path, rule("protocol", "udp", "port_range_min", -16, "port_range_max", 1), 400, "SecurityGroupInvalidPortValue", "Invalid value for port -16"},
			{"port not a number", "POST", path, rule("protocol", "tcp", "port_range_min", "ssh", "port_range_max", 22), 400, "SecurityGroupInvalidPortValue", "Invalid value for port ssh"},
			{"icmp type 256", "POST", path, rule("protocol", "icmp", "port_range_min", 256, "port_range_max", 0), 400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type (port_range_min) 256. It must be 0 to 255."},
			{"icmp code 256", "POST", path, rule("protocol", "icmp", "port_range_min", 8, "port_range_max", 256), 400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP code (port_range_max) 256. It must be 0 to 255."},
			{"icmp type and code 256: type first", "POST", path, rule("protocol", "icmp", "port_range_min", 300, "port_range_max", 256), 400, "SecurityGroupInvalidIcmpValue", "ICMP type (port_range_min) 300"},
			{"ipv6-icmp code 256", "POST", path, rule("protocol", "ipv6-icmp", "ethertype", "IPv6", "port_range_min", 1, "port_range_max", 256), 400, "SecurityGroupInvalidIcmpValue", "ICMP code (port_range_max) 256"},
			{"icmp code without type", "POST", path, rule("protocol", "icmp", "port_range_max", 6), 400, "SecurityGroupMissingIcmpType", "ICMP code (port-range-max) 6 is provided but ICMP type (port-range-min) is missing."},
			{"ports on gre", "POST", path, rule("protocol", "gre", "port_range_min", 1, "port_range_max", 2), 400, "SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol 47. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."},
			{"ports on protocol 112", "POST", path, rule("protocol", "112", "port_range_min", 1), 400, "SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol 112."},
			{"ports without protocol", "POST", path, rule("port_range_min", 22, "port_range_max", 22), 400, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given."},
			{"nonexistent remote group", "POST", path, rule("protocol", "tcp", "port_range_min", 22, "port_range_max", 22, "remote_group_id", missing), 404, "SecurityGroupNotFound", "Security group " + missing + " does not exist"},
		}
		runFaultCases(t, e, cases, snapshot, "")
		// What the reference accepts still works: a single port, ICMP
		// type without code, any protocol without ports.
		for _, ok := range []map[string]any{
			rule("protocol", "tcp", "port_range_min", 22, "port_range_max", 22),
			rule("protocol", "icmp", "port_range_min", 8),
			rule("protocol", "icmp", "port_range_min", 0, "port_range_max", 0),
			rule("protocol", "gre"),
			rule("protocol", "udplite", "port_range_min", 1, "port_range_max", 65535),
		} {
			item(t, e.do("POST", path, projectA, ok), 201, "security_group_rule")
		}
	})
}
