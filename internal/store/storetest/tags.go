package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// testTags sets, replaces and reads tags, refuses tags on a missing
// resource, keeps kinds apart, and drops a resource's tags (and its
// subnets' with a network) when it is deleted, so an id used again starts
// untagged; a failed delete keeps them.
func testTags(t *testing.T, s store.Store) {
	base(t, s)
	tags := func(kind string, ids ...string) map[string][]string {
		t.Helper()
		var got map[string][]string
		read(t, s, func(tx store.Tx) error {
			var err error
			got, err = tx.Tags(ctx, kind, ids)
			return err
		})
		return got
	}
	set := func(kind, id string, tags ...string) func(tx store.Tx) error {
		return func(tx store.Tx) error { return tx.SetTags(ctx, kind, id, tags, time.Time{}) }
	}
	write(t, s, set("networks", "n1", "red", "blue"))
	write(t, s, set("subnets", "s1", "red"))
	write(t, s, set("security_groups", "sg1", "x"))
	if got, want := tags("networks", "n1", "ext", "nope"), map[string][]string{"n1": {"blue", "red"}}; !cmp.Equal(got, want) {
		t.Fatalf("Tags(networks) = %v, want %v", got, want)
	}
	write(t, s, set("networks", "n1", "green", "blue"))
	if got, want := tags("networks", "n1"), map[string][]string{"n1": {"blue", "green"}}; !cmp.Equal(got, want) {
		t.Fatalf("after replace: %v, want %v", got, want)
	}
	if got := tags("subnets", "n1"); len(got) != 0 {
		t.Fatalf("a network's tags read as a subnet's: %v", got)
	}
	writeErr(t, s, store.ErrNotFound, set("networks", "nope", "a"))
	writeErr(t, s, store.ErrNotFound, set("subnets", "n1", "a")) // a network id is no subnet
	if err := s.Write(ctx, set("agents", "n1", "a")); err == nil {
		t.Fatal("SetTags on a kind without tags succeeded")
	}

	// A network still used by a port is not deleted and keeps its tags.
	write(t, s, create(port("p", "n1", "p1", fixed("s1", "10.0.0.5"))))
	writeErr(t, s, store.ErrReferenced, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "n1") })
	if got := tags("networks", "n1"); len(got["n1"]) != 2 {
		t.Fatalf("a failed delete dropped tags: %v", got)
	}
	write(t, s, set("ports", "p", "port-tag"))
	write(t, s, func(tx store.Tx) error { return tx.DeletePort(ctx, "p") })
	write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "n1") })
	write(t, s, func(tx store.Tx) error { return tx.DeleteSecurityGroup(ctx, "sg1") })
	write(t, s, create(network("n1", "p1"), subnet("s1", "n1", "p1", "10.0.0.0/24"), group("sg1", "p1"),
		port("p", "n1", "p1", fixed("s1", "10.0.0.5"))))
	for _, k := range []struct{ kind, id string }{{"networks", "n1"}, {"subnets", "s1"}, {"ports", "p"}, {"security_groups", "sg1"}} {
		if got := tags(k.kind, k.id); len(got) != 0 {
			t.Errorf("%s %s deleted and created again has the old tags %v", k.kind, k.id, got)
		}
	}

	// VPN resources carry tags too and drop them on delete.
	write(t, s, create(&model.IKEPolicy{ID: "ike", ProjectID: "p1", Standard: std(0)}))
	write(t, s, set("ikepolicies", "ike", "vpn"))
	if got := tags("ikepolicies", "ike"); !cmp.Equal(got, map[string][]string{"ike": {"vpn"}}) {
		t.Fatalf("Tags(ikepolicies) = %v", got)
	}
	write(t, s, func(tx store.Tx) error { return tx.DeleteIKEPolicy(ctx, "ike") })
	if err := s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.Tags(ctx, "ikepolicies", []string{"ike"})
		if len(got) != 0 {
			return errors.New("tags left after delete")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// A change with a time bumps the resource's revision and updated_at;
	// without one it leaves them.
	rev := func() (int, time.Time) {
		t.Helper()
		var n *model.Network
		read(t, s, func(tx store.Tx) error {
			var err error
			n, err = tx.GetNetwork(ctx, "n1")
			return err
		})
		return n.RevisionNumber, n.UpdatedAt
	}
	r0, _ := rev()
	write(t, s, set("networks", "n1", "quiet"))
	if r, _ := rev(); r != r0 {
		t.Fatalf("SetTags without a time: revision %d, want %d", r, r0)
	}
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	write(t, s, func(tx store.Tx) error { return tx.SetTags(ctx, "networks", "n1", []string{"loud"}, when) })
	if r, at := rev(); r != r0+1 || !at.Equal(when) {
		t.Fatalf("SetTags with a time: revision %d at %v, want %d at %v", r, at, r0+1, when)
	}
	writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { return tx.SetTags(ctx, "networks", "nope", nil, when) })
}
