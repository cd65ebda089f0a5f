package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		storetest.Run(t, func(t *testing.T) store.Store { return sqltest.Open(t, dialect) })
	})
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlstore.Open(context.Background(), "sqlite::memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestMigrateIdempotent opens the same database several times at once, as
// servers starting together would, and migrates again.
func TestMigrateIdempotent(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		db := sqltest.OpenDB(t, dialect)
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if got := db.Dialect(); got != dialect {
			t.Errorf("Dialect() = %q, want %q", got, dialect)
		}
	})
}

// TestConcurrentOpen starts several "servers" on one new database at once:
// migrations must be applied exactly once.
func TestConcurrentOpen(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		dsn := sqltest.DSN(t, dialect)
		var wg sync.WaitGroup
		dbs := make([]*sqlstore.DB, 4)
		errs := make([]error, len(dbs))
		for i := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dbs[i], errs[i] = sqlstore.Open(context.Background(), dsn)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, db := range dbs {
			defer db.Close()
		}
		ctx := context.Background()
		if err := dbs[0].Write(ctx, func(tx store.Tx) error { return tx.SetQuota(ctx, "p", "port", 1) }); err != nil {
			t.Fatal(err)
		}
		err := dbs[3].Read(ctx, func(tx store.Tx) error {
			q, err := tx.Quotas(ctx, "p")
			if err == nil && q["port"] != 1 {
				err = fmt.Errorf("quotas = %v", q)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenDSN(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		"sqlite://" + filepath.Join(dir, "a.db"),
		"sqlite:" + filepath.Join(dir, "b.db"),
		filepath.Join(dir, "c.db"),
		filepath.Join(dir, "d.db") + "?_pragma=cache_size(-4000)",
		"sqlite::memory:",
		":memory:",
	} {
		db, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			t.Errorf("Open(%q): %v", dsn, err)
			continue
		}
		err = db.Write(context.Background(), func(tx store.Tx) error {
			return tx.SetQuota(context.Background(), "p", "network", 1)
		})
		if err != nil {
			t.Errorf("%q: write: %v", dsn, err)
		}
		db.Close()
	}
	for _, dsn := range []string{"sqlite://", filepath.Join(dir, "missing", "e.db"), "mysql://x@y/z", "postgre://x"} {
		if db, err := sqlstore.Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

// TestReadOnly checks that Read transactions cannot write.
func TestReadOnly(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		db := sqltest.Open(t, dialect)
		err := db.Read(context.Background(), func(tx store.Tx) error {
			return tx.SetQuota(context.Background(), "p", "network", 1)
		})
		if err == nil {
			t.Error("write in a Read transaction succeeded")
		}
	})
}

// Benchmarks: go test -bench . -benchtime 2000x ./internal/store/sqlstore
// (set NEUTRINO_TEST_POSTGRES for the postgres ones).

func benchStore(b *testing.B, dialect string) store.Store {
	s := sqltest.Open(b, dialect)
	ctx := context.Background()
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateNetwork(ctx, &model.Network{ID: "n", ProjectID: "p"}, nil); err != nil {
			return err
		}
		if err := tx.CreateSecurityGroup(ctx, &model.SecurityGroup{ID: "sg", ProjectID: "p"}); err != nil {
			return err
		}
		return tx.CreateSubnet(ctx, &model.Subnet{ID: "s", ProjectID: "p", NetworkID: "n", IPVersion: 4,
			CIDR: netip.MustParsePrefix("10.0.0.0/8")})
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchPort(i int) *model.Port {
	return &model.Port{ID: fmt.Sprint("port-", i), ProjectID: "p", NetworkID: "n", Name: "bench",
		MACAddress:     fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
		FixedIPs:       []model.FixedIP{{SubnetID: "s", IPAddress: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}},
		SecurityGroups: []string{"sg"}, BindingProfile: map[string]any{"k": "v"}}
}

// BenchmarkCreatePort measures one write transaction creating a port with
// one fixed IP and one security group.
func BenchmarkCreatePort(b *testing.B) {
	for _, dialect := range sqltest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := benchStore(b, dialect)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if err := s.Write(ctx, func(tx store.Tx) error { return tx.CreatePort(ctx, benchPort(i)) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListPorts measures listing 5,000 ports with their fixed IPs and
// security groups in one read transaction.
func BenchmarkListPorts(b *testing.B) {
	const n = 5000
	for _, dialect := range sqltest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := benchStore(b, dialect)
			ctx := context.Background()
			err := s.Write(ctx, func(tx store.Tx) error {
				for i := range n {
					if err := tx.CreatePort(ctx, benchPort(i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				err := s.Read(ctx, func(tx store.Tx) error {
					ps, err := tx.ListPorts(ctx, store.PortFilter{})
					if err == nil && (len(ps) != n || len(ps[n-1].FixedIPs) != 1 || len(ps[n-1].SecurityGroups) != 1) {
						err = fmt.Errorf("listed %d ports", len(ps))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestUpgrade opens databases written by older releases, with data in them:
// Open must apply the later migrations in place, keep the data, and leave
// the same schema as a new database.
func TestUpgrade(t *testing.T) {
	for _, from := range []string{"0001_init", "0002_vpnaas"} {
		t.Run("from-"+from, func(t *testing.T) {
			sqltest.Run(t, func(t *testing.T, dialect string) { testUpgrade(t, dialect, from) })
		})
	}
}

func testUpgrade(t *testing.T, dialect, from string) {
	ctx := context.Background()
	dsn := sqltest.DSN(t, dialect)
	old, err := sqlstore.OpenAt(ctx, dsn, from)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// Networks as the old releases wrote them, without a segmentation id;
	// b's deletion leaves a gap in seq.
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"a", "b", "c"} {
		if err := old.Exec(ctx, `INSERT INTO networks (id, project_id, name, admin_state_up, status, shared, external,
			mtu, port_security_enabled, description, created_at, updated_at, revision_number)
			VALUES (?, 'p', ?, true, 'ACTIVE', false, false, 1450, true, 'old', ?, ?, 3)`,
			id, "net "+id, created, created); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Exec(ctx, "DELETE FROM networks WHERE id = 'b'"); err != nil {
		t.Fatal(err)
	}
	// Ports as the old releases wrote them, without router_id: a VM's port,
	// an interface of router r in r's project, and one that another
	// project forged by naming r in device_id.
	oldPort := func(id, project, deviceID, owner, host, ip string, pos int) error {
		if err := old.Exec(ctx, `INSERT INTO ports (id, project_id, network_id, name, admin_state_up, status,
			mac_address, device_id, device_owner, port_security_enabled, allowed_address_pairs, binding_host_id,
			binding_profile, binding_vnic_type, binding_vif_type, binding_vif_details, description, created_at,
			updated_at, revision_number)
			VALUES (?, ?, 'a', '', true, 'DOWN', ?, ?, ?, true, '[]', ?, '{}', 'normal', 'unbound', '{}', '', ?, ?, 0)`,
			id, project, fmt.Sprintf("fa:16:3e:00:00:%02x", pos), deviceID, owner, host, created, created); err != nil {
			return err
		}
		return old.Exec(ctx, `INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id, position)
			VALUES ('s', ?, ?, 'a', 0)`, ip, id)
	}
	vpnObjects := func(tx store.Tx) error {
		for _, err := range []error{
			tx.CreateIKEPolicy(ctx, &model.IKEPolicy{ID: "ike", ProjectID: "p"}),
			tx.CreateIPsecPolicy(ctx, &model.IPsecPolicy{ID: "ipsec", ProjectID: "p"}),
			tx.CreateVPNService(ctx, &model.VPNService{ID: "vpn", ProjectID: "p", RouterID: "r", SubnetID: "s"}),
			tx.CreateEndpointGroup(ctx, &model.EndpointGroup{ID: "eg", ProjectID: "p", Type: "subnet", Endpoints: []string{"s"}}),
			tx.CreateConnection(ctx, &model.IPsecSiteConnection{ID: "c", ProjectID: "p", VPNServiceID: "vpn",
				IKEPolicyID: "ike", IPsecPolicyID: "ipsec", LocalEPGroupID: "eg", PSK: "k"}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}
	err = old.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateSubnet(ctx, &model.Subnet{ID: "s", ProjectID: "p", NetworkID: "a", IPVersion: 4,
			CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
			return err
		}
		if err := tx.CreateRouter(ctx, &model.Router{ID: "r", ProjectID: "p"}); err != nil {
			return err
		}
		if from >= "0002_vpnaas" {
			return vpnObjects(tx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		oldPort("hp", "p", "", "", "h1", "10.0.0.5", 1),
		oldPort("ri", "p", "r", model.OwnerRouterInterface, "", "10.0.0.1", 2),
		oldPort("rf", "q", "r", model.OwnerRouterInterface, "", "10.0.0.6", 3),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantOld := map[string][]string{"0001_init": {"0001_init"}, "0002_vpnaas": {"0001_init", "0002_vpnaas"}}[from]
	if applied, err := old.Applied(ctx); err != nil || !slices.Equal(applied, wantOld) {
		t.Fatalf("old database: applied %v, %v; want %v", applied, err, wantOld)
	}
	err = old.Read(ctx, func(tx store.Tx) error {
		_, err := tx.ListAgents(ctx)
		return err
	})
	if err == nil {
		t.Fatal("old database already has the agents table")
	}
	err = old.Read(ctx, func(tx store.Tx) error {
		_, err := tx.ListIKEPolicies(ctx, store.PolicyFilter{})
		return err
	})
	if hasVPN := err == nil; hasVPN != (from >= "0002_vpnaas") {
		t.Fatalf("old database at %s has the VPN tables: %v", from, hasVPN)
	}
	old.Close()

	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of the old database: %v", err)
	}
	defer db.Close()
	fresh := sqltest.OpenDB(t, dialect)
	want, err := fresh.Applied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0001_init", "0002_vpnaas", "0003_agents"} {
		if !slices.Contains(want, v) {
			t.Errorf("new database: applied %v, want %s among them", want, v)
		}
	}
	if got, err := db.Applied(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("upgraded database: applied %v, %v; want %v", got, err, want)
	}
	wantSchema, err := fresh.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"endpoint_group_endpoints", "router_agent_bindings", "agents", "segmentation_id",
		"ports_binding_host_id", "ports_router_id"} {
		if !slices.ContainsFunc(wantSchema, func(l string) bool { return strings.Contains(l, s) }) {
			t.Errorf("new schema lacks %s: %q", s, wantSchema)
		}
	}
	gotSchema, err := db.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSchema, gotSchema); diff != "" {
		t.Errorf("upgraded schema differs from a new one (-new +upgraded):\n%s", diff)
	}

	// The old networks are numbered in creation order and VXLAN, the rest
	// kept.
	err = db.Read(ctx, func(tx store.Tx) error {
		got, err := tx.ListNetworks(ctx, store.NetworkFilter{})
		if err != nil {
			return err
		}
		var wantNets []model.Network
		for i, id := range []string{"a", "c"} {
			wantNets = append(wantNets, model.Network{ID: id, ProjectID: "p", Name: "net " + id, AdminStateUp: true,
				Status: "ACTIVE", MTU: 1450, PortSecurityEnabled: true, SegmentationID: i + 1, NetworkType: "vxlan",
				Standard: model.Standard{Description: "old", CreatedAt: created, UpdatedAt: created, RevisionNumber: 3}})
		}
		if diff := cmp.Diff(wantNets, got); diff != "" {
			t.Errorf("old networks (-want +got):\n%s", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// New networks get ids of their own; the new tables work with the old rows.
	agent := &model.Agent{ID: "ag", Host: "h1", AgentType: "L3 agent", Configurations: map[string]any{"k": "v"}}
	var fresh1, fresh2 model.Network
	err = db.Write(ctx, func(tx store.Tx) error {
		fresh1, fresh2 = model.Network{ID: "d", ProjectID: "p"}, model.Network{ID: "e", ProjectID: "p"}
		if err := tx.CreateNetwork(ctx, &fresh1, nil); err != nil {
			return err
		}
		if err := tx.CreateNetwork(ctx, &fresh2, nil); err != nil {
			return err
		}
		if err := tx.CreateAgent(ctx, agent); err != nil {
			return err
		}
		if err := tx.BindRouter(ctx, "r", "ag"); err != nil {
			return err
		}
		if from < "0002_vpnaas" {
			return vpnObjects(tx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	segs := []int{1, 2, fresh1.SegmentationID, fresh2.SegmentationID}
	slices.Sort(segs)
	if segs = slices.Compact(segs); len(segs) != 4 || segs[0] < 1 || segs[3] > sqlstore.MaxSegmentationID {
		t.Errorf("segmentation ids of the new networks: %d and %d, want distinct ones in range, not 1 or 2",
			fresh1.SegmentationID, fresh2.SegmentationID)
	}
	err = db.Write(ctx, func(tx store.Tx) error { return tx.DeleteRouter(ctx, "r") })
	if !errors.Is(err, store.ErrReferenced) {
		t.Errorf("DeleteRouter of a router with a VPN service = %v, want ErrReferenced", err)
	}
	err = db.Read(ctx, func(tx store.Tx) error {
		if n, err := tx.GetNetwork(ctx, "d"); err != nil || n.SegmentationID != fresh1.SegmentationID {
			return fmt.Errorf("new network: %+v, %w; want segmentation id %d", n, err, fresh1.SegmentationID)
		}
		if rs, err := tx.AgentRouters(ctx, "ag"); err != nil || !slices.Equal(rs, []string{"r"}) {
			return fmt.Errorf("AgentRouters(ag) = %v, %w; want [r]", rs, err)
		}
		ps, err := tx.PortsOnHost(ctx, "h1")
		if err != nil {
			return err
		}
		if len(ps) != 1 || ps[0].ID != "hp" || len(ps[0].FixedIPs) != 1 {
			return fmt.Errorf("PortsOnHost(h1) = %+v, want the old port hp", ps)
		}
		// The router's own interface is attached; the forged one is not.
		attached, err := tx.ListPorts(ctx, store.PortFilter{RouterID: "r"})
		if err != nil {
			return err
		}
		if len(attached) != 1 || attached[0].ID != "ri" || attached[0].RouterID != "r" {
			return fmt.Errorf("ports attached to r = %+v, want only ri", attached)
		}
		for r, want := range map[string]int{"network": 4, "subnet": 1, "port": 2, "router": 1, "ikepolicy": 1,
			"ipsecpolicy": 1, "vpnservice": 1, "endpoint_group": 1, "ipsec_site_connection": 1} {
			if n, err := tx.Count(ctx, r, "p"); err != nil || n != want {
				return fmt.Errorf("Count(%s) = %d, %w; want %d", r, n, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSegmentationIDPastRange checks the choice of a segmentation id once
// the networks' seq has passed the 24-bit range: the lowest free one.
func TestSegmentationIDPastRange(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		ctx := context.Background()
		db := sqltest.OpenDB(t, dialect)
		var nets []*model.Network
		err := db.Write(ctx, func(tx store.Tx) error {
			for i := range 4 {
				n := &model.Network{ID: fmt.Sprint("n", i), ProjectID: "p"}
				if err := tx.CreateNetwork(ctx, n, nil); err != nil {
					return err
				}
				nets = append(nets, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range nets {
			if n.SegmentationID != i+1 {
				t.Fatalf("network %d of a new database got segmentation id %d, want %d", i, n.SegmentationID, i+1)
			}
		}
		check := func(seq int64, want int) {
			t.Helper()
			if got, err := db.SegmentationIDFor(ctx, seq); err != nil || got != want {
				t.Errorf("SegmentationIDFor(%d) = %d, %v; want %d", seq, got, err, want)
			}
		}
		const max = sqlstore.MaxSegmentationID
		check(max, max)
		check(max+1, 5)
		check(1<<40, 5)
		check(3, 5) // seq in range but its id taken
		deleteNet := func(id string) {
			t.Helper()
			if err := db.Write(ctx, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, id) }); err != nil {
				t.Fatal(err)
			}
		}
		deleteNet("n2")
		check(max+1, 3)
		deleteNet("n0")
		check(max+1, 1)
		check(5, 5)
		check(4, 1)
	})
}
