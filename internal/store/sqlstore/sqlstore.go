// Package sqlstore implements store.Store on SQLite (modernc.org/sqlite, pure
// Go) and PostgreSQL (pgx). The queries and the schema are written once; a
// small dialect layer rebinds placeholders and substitutes a few column types.
//
// Data source names accepted by Open:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://);
//	                                                     any pgx parameter, e.g. search_path=x
//	sqlite:///abs/path.db                                SQLite file at /abs/path.db
//	sqlite://rel/path.db, sqlite:rel/path.db             SQLite file, relative path
//	/abs/path.db, rel/path.db                            SQLite file (any other string)
//	sqlite::memory:, :memory:                            private in-memory SQLite (tests)
//
// A query string on a SQLite DSN is passed to the driver after Neutrino's own
// settings (WAL, synchronous=NORMAL, foreign_keys=ON, busy_timeout=10s).
//
// A SQLite database file, its WAL and its shared-memory file are private to
// the server's user (mode 0600, whatever the umask or the directory's mode):
// they hold the VPN connections' pre-shared keys. Open creates the file so,
// SQLite gives the WAL and shared-memory files the database file's mode, and
// Open removes group and other permissions from any of the three that has
// them, saying so in the log.
//
// SQLite runs with two pools: one writer connection whose transactions begin
// IMMEDIATE, so writers are serialised and Tx.Lock is a no-op, and a pool of
// query-only readers for Store.Read (WAL lets them run beside the writer).
// PostgreSQL writes run at READ COMMITTED and serialise on the advisory locks
// taken by Tx.Lock; reads run at REPEATABLE READ so that a read transaction
// sees one snapshot.
//
// Timestamps are stored in UTC with second precision: Create and Update
// methods normalise the model's CreatedAt and UpdatedAt in place so the
// caller's copy equals what a later Get returns. Every mutating Tx method is
// atomic (it runs under a savepoint): when it fails it leaves nothing behind
// and the transaction stays usable, on both backends.
//
// CreateNetwork assigns the network's segmentation id (VXLAN VNI, 1..2^24-1)
// from the row's seq, which PostgreSQL's identity hands out without locks
// and SQLite's serialised writer picks as MAX+1; past the range it takes the
// lowest free id under a lock. A UNIQUE index is the safety net.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/neutrino-net/neutrino/internal/store"
)

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is a store.Store backed by SQLite or PostgreSQL.
type DB struct {
	dialect string
	w, r    *sql.DB // writer and reader pools; the same pool on PostgreSQL and for in-memory SQLite
	// ws and rs cache the pools' prepared statements (SQLite only).
	ws, rs *stmtCache
	// wq queues SQLite's writers in order. The writer pool has one
	// connection, and database/sql hands a freed connection to a random
	// waiter: under 32 concurrent writers that made the slowest 1% wait
	// five times the average. A sync.Mutex hands over in FIFO order once
	// waiters queue (its starvation mode).
	wq sync.Mutex
}

var _ store.Store = (*DB)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger logs what Open does to the database's files (default: the
// slog default logger).
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// Open connects to the database named by dsn (see the package documentation)
// and applies any pending migrations.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	db, err := open(ctx, dsn, opts...)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		pool, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		// Keep every connection idle rather than closing and reopening
		// them under load: a new PostgreSQL session costs a process and a
		// password check.
		pool.SetMaxOpenConns(32)
		pool.SetMaxIdleConns(32)
		pool.SetConnMaxIdleTime(time.Minute)
		return &DB{dialect: Postgres, w: pool, r: pool}, nil
	}

	if scheme, _, ok := strings.Cut(dsn, "://"); ok && scheme != "sqlite" {
		return nil, fmt.Errorf("open: unsupported database %q (want postgres:// or sqlite://)", scheme+"://")
	}
	file, query, _ := strings.Cut(dsn, "?")
	switch {
	case strings.HasPrefix(file, "sqlite://"):
		file = strings.TrimPrefix(file, "sqlite://")
	case strings.HasPrefix(file, "sqlite:"):
		file = strings.TrimPrefix(file, "sqlite:")
	}
	if file == "" {
		return nil, fmt.Errorf("open sqlite: empty file name in %q", dsn)
	}
	params := func(extra string) string {
		s := file + "?_busy_timeout=10000&_foreign_keys=1" + extra
		if query != "" {
			s += "&" + query
		}
		return s
	}
	if file == ":memory:" {
		// Every connection to :memory: is a new database: use one.
		pool, err := sql.Open("sqlite", params(""))
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		pool.SetMaxOpenConns(1)
		pool.SetConnMaxIdleTime(0)
		pool.SetConnMaxLifetime(0)
		c := newStmtCache(pool)
		return &DB{dialect: SQLite, w: pool, r: pool, ws: c, rs: c}, nil
	}
	if err := privateFiles(file, o.log); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", params("&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Make sure the file exists and is in WAL mode before a reader opens it.
	// Switching a new file to WAL can fail with SQLITE_BUSY, without waiting,
	// while another process does the same: retry.
	for delay := 5 * time.Millisecond; ; delay *= 2 {
		err := w.PingContext(ctx)
		if err == nil {
			break
		}
		var sqErr *sqlite.Error
		if !errors.As(err, &sqErr) || sqErr.Code()&0xff != sqlite3.SQLITE_BUSY || delay > time.Second {
			w.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", file, err)
		}
		time.Sleep(delay)
	}
	// The WAL and shared-memory files exist now; SQLite gave them the
	// database file's mode, but a file left by an older release may be
	// looser.
	if err := privateFiles(file, o.log); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", params("&_query_only=1"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{dialect: SQLite, w: w, r: r, ws: newStmtCache(w), rs: newStmtCache(r)}, nil
}

// privateFiles creates the SQLite database file with mode 0600 if it is
// missing, and takes group and other permissions off it, its WAL and its
// shared-memory file (those that exist), logging each file it tightens.
func privateFiles(file string, log *slog.Logger) error {
	if strings.HasPrefix(file, "file:") {
		return nil // a URI: the driver resolves it
	}
	// O_CREATE's mode goes through the umask, which can only take bits
	// away from 0600.
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", file, err)
	}
	f.Close()
	for _, name := range []string{file, file + "-wal", file + "-shm"} {
		fi, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("open sqlite: %w", err)
		}
		mode := fi.Mode().Perm()
		if mode&0o077 == 0 {
			continue
		}
		if err := os.Chmod(name, mode&^0o077); err != nil {
			return fmt.Errorf("open sqlite: make %s private: %w", name, err)
		}
		log.Warn("database file had group or other permissions; made it private to its owner",
			"file", name, "was", fmt.Sprintf("%#o", mode), "now", fmt.Sprintf("%#o", mode&^0o077))
	}
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// Close closes the connection pools.
func (db *DB) Close() error {
	db.ws.close()
	db.rs.close()
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Read runs fn in a read-only transaction.
func (db *DB) Read(ctx context.Context, fn func(store.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return db.run(ctx, db.r, db.rs, opts, false, func(t *tx) error { return fn(t) })
}

// Write runs fn in a read-write transaction, committed if fn returns nil.
func (db *DB) Write(ctx context.Context, fn func(store.Tx) error) error {
	if db.dialect == SQLite {
		db.wq.Lock()
		defer db.wq.Unlock()
	}
	return db.run(ctx, db.w, db.ws, nil, true, func(t *tx) error { return fn(t) })
}

func (db *DB) run(ctx context.Context, pool *sql.DB, stmts *stmtCache, opts *sql.TxOptions, commit bool, fn func(*tx) error) error {
	sqlTx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done { // fn failed or panicked
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(&tx{tx: sqlTx, pg: db.dialect == Postgres, stmts: stmts}); err != nil {
		return err
	}
	done = true
	if !commit {
		_ = sqlTx.Rollback()
		return nil
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the first key of the two-key advisory lock that
// serialises migrations of one schema (the second key hashes the schema name).
const migrationLock = 0x6e657574 // "neut"

// Migrate applies the embedded migrations not yet recorded in the
// schema_migrations table, all in one transaction. Concurrent callers (two
// servers starting on one database) are serialised.
func (db *DB) Migrate(ctx context.Context) error { return db.migrate(ctx, "") }

// migrate applies the pending migrations up to and including version last
// (all of them if last is ""). Tests use it to build an older schema.
func (db *DB) migrate(ctx context.Context, last string) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	types := strings.NewReplacer("{{seq}}", "INTEGER PRIMARY KEY", "{{timestamp}}", "TEXT")
	if db.dialect == Postgres {
		types = strings.NewReplacer("{{seq}}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "{{timestamp}}", "TIMESTAMPTZ")
	}
	return db.run(ctx, db.w, nil, nil, true, func(t *tx) error {
		if t.pg {
			if _, err := t.exec(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", migrationLock); err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
		}
		if _, err := t.tx.ExecContext(ctx, types.Replace(
			"CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at {{timestamp}} NOT NULL)")); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied, err := queryAll(ctx, t, "SELECT version FROM schema_migrations", scanOne[string])
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, name := range names {
			version := strings.TrimSuffix(path.Base(name), ".sql")
			if last != "" && version > last {
				break
			}
			if slices.Contains(applied, version) {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("migrate %s: %w", version, err)
			}
			if _, err := t.tx.ExecContext(ctx, types.Replace(string(body))); err != nil {
				return fmt.Errorf("migrate %s: %w", version, err)
			}
			now := time.Now()
			if _, err := t.exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, tsCol{&now}); err != nil {
				return fmt.Errorf("migrate %s: %w", version, err)
			}
		}
		return nil
	})
}

// mapErr maps constraint violations to the store's sentinel errors, keeping
// the driver's error in the chain.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	var sqErr *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", store.ErrReferenced, err)
		}
	case errors.As(err, &sqErr):
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", store.ErrReferenced, err)
		}
	}
	return err
}
