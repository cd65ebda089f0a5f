package sqlstore_test

import (
	"context"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestAgentTokenGenerations: a host starts at generation 0; each rotation
// moves it to the next, on both backends, and the listing shows only
// rotated hosts.
func TestAgentTokenGenerations(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		db := sqltest.OpenDB(t, dialect)
		ctx := context.Background()
		if g, err := db.AgentTokenGeneration(ctx, "h1"); err != nil || g != 0 {
			t.Fatalf("never rotated: generation %d, %v", g, err)
		}
		for want := uint64(1); want <= 3; want++ {
			if g, err := db.RotateAgentToken(ctx, "h1"); err != nil || g != want {
				t.Fatalf("rotation %d: generation %d, %v", want, g, err)
			}
		}
		if g, err := db.RotateAgentToken(ctx, "h2"); err != nil || g != 1 {
			t.Fatalf("h2: generation %d, %v", g, err)
		}
		if g, err := db.AgentTokenGeneration(ctx, "h1"); err != nil || g != 3 {
			t.Fatalf("h1: generation %d, %v", g, err)
		}
		gens, err := db.AgentTokenGenerations(ctx)
		if err != nil || len(gens) != 2 || gens["h1"] != 3 || gens["h2"] != 1 {
			t.Fatalf("generations = %v, %v", gens, err)
		}
	})
}
