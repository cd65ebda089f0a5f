package sqlstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

// TestFilesArePrivate: the database, its WAL and its shared-memory file
// hold PSKs, so they are mode 0600 even in a world-writable directory under
// umask 0; files an older release left looser are tightened at open, and
// the log says so without a secret.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "neutrino.db")
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	db, err := sqlstore.Open(ctx, "sqlite://"+file, sqlstore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx store.Tx) error { return tx.SetQuota(ctx, "p", "port", 7) }); err != nil {
		t.Fatal(err)
	}
	checkModes := func(when string) {
		t.Helper()
		for _, name := range []string{file, file + "-wal", file + "-shm"} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("%s: %s has mode %#o, want 0600", when, filepath.Base(name), got)
			}
		}
	}
	checkModes("new database")
	if logs.Len() != 0 {
		t.Errorf("a new database logged: %s", logs.String())
	}

	// An older release's files, readable by everyone, while the database
	// is still open (so the WAL and shared-memory files stay).
	for _, name := range []string{file, file + "-wal", file + "-shm"} {
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	again, err := sqlstore.Open(ctx, "sqlite://"+file, sqlstore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	db.Close()
	checkModes("reopened database")
	for _, name := range []string{"neutrino.db", "neutrino.db-wal", "neutrino.db-shm"} {
		if !strings.Contains(logs.String(), "file="+filepath.Join(dir, name)+" was=0644 now=0600") {
			t.Errorf("no log line for %s: %s", name, logs.String())
		}
	}
	if strings.Count(logs.String(), "\n") != 3 {
		t.Errorf("want three log lines: %s", logs.String())
	}
}
