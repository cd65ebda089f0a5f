// Package sqltest opens throw-away sqlstore databases for tests of any
// package: a SQLite file in t.TempDir(), or, when NEUTRINO_TEST_POSTGRES
// names a PostgreSQL DSN, a fresh schema in that database that is dropped
// when the test ends.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"

	"github.com/neutrino-net/neutrino/internal/store"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// EnvPostgres names the environment variable holding the PostgreSQL DSN,
// e.g. postgres://neutrino:neutrino@127.0.0.1:5432/neutrino_test?sslmode=disable
// (scripts/ci/postgres.sh prints it).
const EnvPostgres = testenv.EnvPostgres

// Dialects lists the backends a store-backed test should cover.
var Dialects = []string{sqlstore.SQLite, sqlstore.Postgres}

// Run runs fn as one subtest per dialect, named after it. Without
// EnvPostgres the postgres subtest fails under CI=true and skips elsewhere
// (testenv.RequirePostgres).
func Run(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			Require(t, d)
			fn(t, d)
		})
	}
}

// Require ends the test (testenv) if the dialect's database is not
// available.
func Require(t testing.TB, dialect string) {
	t.Helper()
	if dialect == sqlstore.Postgres {
		testenv.RequirePostgres(t)
	}
}

// Open returns an empty, migrated store of the dialect ("sqlite" or
// "postgres") that is closed and removed when the test ends. It ends the
// test (Require) if the dialect is unavailable.
func Open(t testing.TB, dialect string) store.Store {
	return OpenDB(t, dialect)
}

// OpenDB is Open returning the concrete *sqlstore.DB.
func OpenDB(t testing.TB, dialect string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), DSN(t, dialect))
	if err != nil {
		t.Fatalf("sqltest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DSN returns the data source name of a new, empty database of the dialect
// (a file in t.TempDir(), or a fresh PostgreSQL schema dropped when the test
// ends), for tests that open it themselves, e.g. by starting a server. It
// ends the test (Require) if the dialect is unavailable.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	Require(t, dialect)
	switch dialect {
	case sqlstore.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "neutrino.db")
	case sqlstore.Postgres:
		return postgresSchema(t)
	}
	t.Fatalf("sqltest: unknown dialect %q", dialect)
	return ""
}

// postgresSchema creates a uniquely named schema, registers its removal,
// and returns a DSN whose search_path selects it.
func postgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if err := adminExec(base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("sqltest: create schema: %v", err)
	}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if err := adminExec(base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqltest: drop schema %s: %v", schema, err)
		}
	})
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("sqltest: %s: %v", EnvPostgres, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	t.Fatalf("sqltest: %s must be a postgres:// URL", EnvPostgres)
	return ""
}

// adminExec runs one statement on a short-lived connection.
func adminExec(dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(stmt)
	return err
}
