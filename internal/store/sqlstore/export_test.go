package sqlstore

import (
	"context"
	"time"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
)

// OpenAt opens dsn like Open but applies the migrations only up to and
// including version, so tests can build a database of an older release.
func OpenAt(ctx context.Context, dsn, version string) (*DB, error) {
	db, err := open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx, version); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Applied lists the versions recorded in schema_migrations, sorted.
func (db *DB) Applied(ctx context.Context) ([]string, error) {
	var out []string
	err := db.run(ctx, db.r, db.rs, nil, false, func(t *tx) (err error) {
		out, err = queryAll(ctx, t, "SELECT version FROM schema_migrations ORDER BY version", scanOne[string])
		return err
	})
	return out, err
}

// Schema describes the tables, columns, indexes and constraints of the
// database, one sorted line each, for comparing two databases' schemas.
func (db *DB) Schema(ctx context.Context) ([]string, error) {
	q := `SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master
		WHERE name NOT LIKE 'sqlite%' AND name <> 'schema_migrations' ORDER BY 1`
	if db.dialect == Postgres {
		q = `SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||
				COALESCE(column_default, '') || ' ' || COALESCE(is_identity, '')
			FROM information_schema.columns WHERE table_schema = current_schema()
			UNION ALL
			SELECT 'index ' || indexname || ': ' || replace(indexdef, current_schema() || '.', '')
			FROM pg_indexes WHERE schemaname = current_schema()
			UNION ALL
			SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
			ORDER BY 1`
	}
	var out []string
	err := db.run(ctx, db.r, db.rs, nil, false, func(t *tx) (err error) {
		out, err = queryAll(ctx, t, q, scanOne[string])
		return err
	})
	return out, err
}

// MaxSegmentationID is the largest segmentation id.
const MaxSegmentationID = segment.MaxVNI

// Exec runs one statement (with ? placeholders; time.Time arguments are
// bound as timestamps) in its own write transaction, for tests that write
// rows as an older release did.
func (db *DB) Exec(ctx context.Context, q string, args ...any) error {
	for i, a := range args {
		if ts, ok := a.(time.Time); ok {
			args[i] = tsCol{&ts}
		}
	}
	return db.run(ctx, db.w, db.ws, nil, true, func(t *tx) error {
		_, err := t.exec(ctx, q, args...)
		return err
	})
}

// SegmentationIDFor returns the segmentation id CreateNetwork would give the
// network getting seq, as if seq were the next one.
func (db *DB) SegmentationIDFor(ctx context.Context, seq int64) (id int, err error) {
	err = db.run(ctx, db.w, db.ws, nil, false, func(t *tx) error {
		id, err = t.segmentationID(ctx, &model.Segment{NetworkType: segment.VXLAN},
			[]segment.Range{{Min: segment.MinVNI, Max: segment.MaxVNI}}, seq)
		return err
	})
	return id, err
}

// OpenConnections counts the connections of both pools, open or opening.
func (db *DB) OpenConnections() int {
	n := db.w.Stats().OpenConnections
	if db.r != db.w {
		n += db.r.Stats().OpenConnections
	}
	return n
}
