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
		if err := tx.CreateNetwork(ctx, &model.Network{ID: "n", ProjectID: "p"}); err != nil {
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

// TestUpgrade opens a database written by a release that knew only the
// first migration, with data in it: Open must apply the later migrations in
// place, keep the data, and leave the same schema as a new database.
func TestUpgrade(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		ctx := context.Background()
		dsn := sqltest.DSN(t, dialect)
		old, err := sqlstore.OpenAt(ctx, dsn, "0001_init")
		if err != nil {
			t.Fatal(err)
		}
		err = old.Write(ctx, func(tx store.Tx) error {
			if err := tx.CreateNetwork(ctx, &model.Network{ID: "n", ProjectID: "p"}); err != nil {
				return err
			}
			if err := tx.CreateSubnet(ctx, &model.Subnet{ID: "s", ProjectID: "p", NetworkID: "n", IPVersion: 4,
				CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
				return err
			}
			return tx.CreateRouter(ctx, &model.Router{ID: "r", ProjectID: "p"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if applied, err := old.Applied(ctx); err != nil || !slices.Equal(applied, []string{"0001_init"}) {
			t.Fatalf("old database: applied %v, %v; want [0001_init]", applied, err)
		}
		err = old.Read(ctx, func(tx store.Tx) error {
			_, err := tx.ListIKEPolicies(ctx, store.Scope{})
			return err
		})
		if err == nil {
			t.Fatal("old database already has the VPN tables")
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
		if !slices.Contains(want, "0002_vpnaas") {
			t.Errorf("new database: applied %v, want 0002_vpnaas among them", want)
		}
		if got, err := db.Applied(ctx); err != nil || !slices.Equal(got, want) {
			t.Errorf("upgraded database: applied %v, %v; want %v", got, err, want)
		}
		wantSchema, err := fresh.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(wantSchema, func(l string) bool { return strings.Contains(l, "endpoint_group_endpoints") }) {
			t.Errorf("new schema lacks endpoint_group_endpoints: %q", wantSchema)
		}
		gotSchema, err := db.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantSchema, gotSchema); diff != "" {
			t.Errorf("upgraded schema differs from a new one (-new +upgraded):\n%s", diff)
		}

		// The VPN tables work with the old rows.
		err = db.Write(ctx, func(tx store.Tx) error {
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
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx store.Tx) error { return tx.DeleteRouter(ctx, "r") })
		if !errors.Is(err, store.ErrReferenced) {
			t.Errorf("DeleteRouter of a router with a VPN service = %v, want ErrReferenced", err)
		}
		err = db.Read(ctx, func(tx store.Tx) error {
			if n, err := tx.GetNetwork(ctx, "n"); err != nil || n.ProjectID != "p" {
				return fmt.Errorf("old network: %+v, %w", n, err)
			}
			for _, r := range []string{"network", "subnet", "router", "ikepolicy", "ipsecpolicy", "vpnservice",
				"endpoint_group", "ipsec_site_connection"} {
				if n, err := tx.Count(ctx, r, "p"); err != nil || n != 1 {
					return fmt.Errorf("Count(%s) = %d, %w; want 1", r, n, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
