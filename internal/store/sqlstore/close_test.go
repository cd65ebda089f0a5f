package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

// TestCloseLeavesNothingOpen closes a SQLite store right after its first
// queries, while the statement cache is still preparing them in the
// background. Close must wait for those prepares: one still opening a
// reader connection recreated the WAL and shared-memory files after Close,
// and a test's TempDir cleanup then failed with "directory not empty".
func TestCloseLeavesNothingOpen(t *testing.T) {
	ctx := context.Background()
	for i := range 30 {
		dir := t.TempDir()
		db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "neutrino.db"))
		if err != nil {
			t.Fatal(err)
		}
		// Queries the cache has not seen: each starts a background prepare.
		for j := range 4 {
			err := db.Read(ctx, func(tx store.Tx) error {
				_, err := tx.GetNetwork(ctx, fmt.Sprintf("missing-%d-%d", i, j))
				return err
			})
			_ = err // not found is expected; only the prepare matters
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := db.OpenConnections(); n != 0 {
			t.Fatalf("round %d: %d connections open or opening after Close", i, n)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("round %d: remove the database directory: %v", i, err)
		}
	}
}
