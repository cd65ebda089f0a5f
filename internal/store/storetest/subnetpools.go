package storetest

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// testSubnetPools round-trips a pool, lists a project's pools with or
// without the shared ones of others, finds subnets by pool, counts pools
// for quotas and deletes a pool with its tags.
func testSubnetPools(t *testing.T, s store.Store) {
	base(t, s)
	mine := &model.SubnetPool{ID: "sp1", ProjectID: "p1", Name: "mine", IPVersion: 4,
		Prefixes: []netip.Prefix{prefix("10.10.0.0/16"), prefix("10.20.0.0/16")}, DefaultPrefixLen: 24,
		MinPrefixLen: 16, MaxPrefixLen: 28, Standard: std(1)}
	shared := &model.SubnetPool{ID: "sp2", ProjectID: "p2", Name: "shared", IPVersion: 6,
		Prefixes: []netip.Prefix{prefix("fd00:10::/48")}, DefaultPrefixLen: 64, MinPrefixLen: 48, MaxPrefixLen: 64,
		Shared: true, IsDefault: true, Standard: std(2)}
	write(t, s, func(tx store.Tx) error {
		if err := tx.CreateSubnetPool(ctx, mine); err != nil {
			return err
		}
		return tx.CreateSubnetPool(ctx, shared)
	})
	sn := subnet("s9", "n1", "p1", "10.10.3.0/24")
	sn.SubnetpoolID = "sp1"
	write(t, s, create(sn))
	read(t, s, func(tx store.Tx) error {
		got, err := tx.GetSubnetPool(ctx, "sp1")
		if err != nil {
			return err
		}
		if d := cmp.Diff(mine, got, cmpOpts); d != "" {
			t.Errorf("GetSubnetPool (-want +got):\n%s", d)
		}
		for _, c := range []struct {
			f    store.SubnetPoolFilter
			want []string
		}{
			{store.SubnetPoolFilter{Scope: store.Scope{ProjectID: "p1"}}, []string{"sp1"}},
			{store.SubnetPoolFilter{Scope: store.Scope{ProjectID: "p1"}, IncludeShared: true}, []string{"sp1", "sp2"}},
			{store.SubnetPoolFilter{Scope: store.Scope{ProjectID: "p3"}, IncludeShared: true}, []string{"sp2"}},
			{store.SubnetPoolFilter{Page: store.Page{Eq: map[string][]any{"is_default": {true}}}}, []string{"sp2"}},
		} {
			if got, err := ids(tx.ListSubnetPools(ctx, c.f)); err != nil || !cmp.Equal(got, c.want) {
				t.Errorf("ListSubnetPools(%+v) = %v, %v; want %v", c.f, got, err, c.want)
			}
		}
		if got, err := ids(tx.ListSubnets(ctx, store.SubnetFilter{SubnetPoolIDs: []string{"sp1"}})); err != nil || !cmp.Equal(got, []string{"s9"}) {
			t.Errorf("subnets of sp1 = %v, %v", got, err)
		}
		if n, err := tx.Count(ctx, "subnetpool", "p1"); err != nil || n != 1 {
			t.Errorf("Count(subnetpool, p1) = %d, %v", n, err)
		}
		return nil
	})
	mine.Name, mine.Prefixes = "renamed", append(mine.Prefixes, prefix("10.30.0.0/16"))
	write(t, s, func(tx store.Tx) error { return tx.UpdateSubnetPool(ctx, mine) })
	write(t, s, func(tx store.Tx) error { return tx.SetTags(ctx, "subnetpools", "sp2", []string{"x"}, time.Time{}) })
	write(t, s, func(tx store.Tx) error { return tx.DeleteSubnetPool(ctx, "sp2") })
	read(t, s, func(tx store.Tx) error {
		got, err := tx.GetSubnetPool(ctx, "sp1")
		if err != nil || got.Name != "renamed" || len(got.Prefixes) != 3 {
			t.Errorf("after update: %+v, %v", got, err)
		}
		if _, err := tx.GetSubnetPool(ctx, "sp2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSubnetPool(sp2) after delete = %v", err)
		}
		if tags, err := tx.Tags(ctx, "subnetpools", []string{"sp2"}); err != nil || len(tags) != 0 {
			t.Errorf("tags of a deleted pool: %v, %v", tags, err)
		}
		return nil
	})
}
