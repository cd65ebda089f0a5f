package cli_test

import (
	"testing"
)

// TestOpenstackSubnetPoolCLI creates a subnet pool and subnets from it
// with the openstack CLI (--subnet-pool with and without --prefix-length,
// --use-default-subnet-pool, --tag), and deletes a pool once it is no
// longer in use, on SQLite (test/api runs the same on both stores).
func TestOpenstackSubnetPoolCLI(t *testing.T) {
	t.Parallel()
	c, _ := newCLI(t)
	rs := c.parallel(
		js("subnet", "pool", "create", "--pool-prefix", "10.60.0.0/16", "--default-prefix-length", "24", "--tag", "blue", "pool1"),
		js("subnet", "pool", "create", "--pool-prefix", "10.61.0.0/16", "--default-prefix-length", "26", "--default", "--share", "public-pool"),
		js("network", "create", "net1"),
	)
	var pool, def map[string]any
	c.decode(rs[0], &pool)
	c.decode(rs[1], &def)
	c.check(rs[2])
	wantFields(t, "subnet pool create pool1", pool, map[string]any{"name": "pool1", "default_prefixlen": float64(24), "ip_version": float64(4)})
	wantFields(t, "subnet pool create public-pool", def, map[string]any{"is_default": true, "shared": true})
	if got := cliTags(pool["tags"]); len(got) != 1 || got[0] != "blue" {
		t.Errorf("subnet pool create --tag blue shows tags %v", got)
	}
	var s1, s2, s3 map[string]any
	c.decode(c.run(js("subnet", "create", "--network", "net1", "--subnet-pool", "pool1", "--prefix-length", "25", "s1")...), &s1)
	c.decode(c.run(js("subnet", "create", "--network", "net1", "--subnet-pool", "pool1", "s2")...), &s2)
	c.decode(c.run(js("subnet", "create", "--network", "net1", "--use-default-subnet-pool", "s3")...), &s3)
	wantFields(t, "subnet create --prefix-length 25", s1, map[string]any{"cidr": "10.60.0.0/25", "subnetpool_id": pool["id"]})
	wantFields(t, "subnet create from the pool's default length", s2, map[string]any{"cidr": "10.60.1.0/24"})
	wantFields(t, "subnet create --use-default-subnet-pool", s3, map[string]any{"cidr": "10.61.0.0/26", "subnetpool_id": def["id"]})

	// A pool in use is not deleted; once its subnets are gone it is.
	c.fails("subnet", "pool", "delete", "pool1")
	c.check(c.run("subnet", "delete", "s1", "s2"))
	c.check(c.run("subnet", "pool", "delete", "pool1"))
	c.gone(c.run("subnet", "pool", "show", "pool1"), "SubnetPool", "pool1")
}
