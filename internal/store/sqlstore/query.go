package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// tx implements store.Tx on a *sql.Tx. Queries are written with ? and
// rebound to $n on PostgreSQL.
type tx struct {
	tx    *sql.Tx
	pg    bool
	stmts *stmtCache // nil: no statement cache
}

func (t *tx) rebind(q string) string {
	if !t.pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// bind adapts arguments to the dialect: pgx binds times to TIMESTAMPTZ
// natively, SQLite stores them as RFC 3339 text.
func (t *tx) bind(args []any) []any {
	if !t.pg {
		for i, a := range args {
			if c, ok := a.(tsCol); ok {
				args[i] = normTime(*c.t).Format(time.RFC3339)
			}
		}
	}
	return args
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = t.rebind(q)
	if st := t.stmts.stmt(ctx, t.tx, q); st != nil {
		res, err := st.ExecContext(ctx, t.bind(args)...)
		return res, mapErr(err)
	}
	res, err := t.tx.ExecContext(ctx, q, t.bind(args)...)
	return res, mapErr(err)
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = t.rebind(q)
	if st := t.stmts.stmt(ctx, t.tx, q); st != nil {
		rows, err := st.QueryContext(ctx, t.bind(args)...)
		return rows, mapErr(err)
	}
	rows, err := t.tx.QueryContext(ctx, q, t.bind(args)...)
	return rows, mapErr(err)
}

// execOne runs a statement that must affect a row, else ErrNotFound.
func (t *tx) execOne(ctx context.Context, q string, args ...any) error {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// atomic runs fn, a sequence of statements, under a savepoint: if fn fails,
// its writes are undone and the transaction stays usable (PostgreSQL would
// otherwise refuse every further statement). The error is prefixed with what.
func (t *tx) atomic(ctx context.Context, what string, fn func() error) error {
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT neutrino_op"); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := fn(); err != nil {
		if _, rbErr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT neutrino_op"); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		_, _ = t.tx.ExecContext(ctx, "RELEASE SAVEPOINT neutrino_op")
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT neutrino_op"); err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// atomic1 is atomic for an fn running a single statement, which on SQLite
// is atomic by itself and leaves the transaction usable when it fails.
func (t *tx) atomic1(ctx context.Context, what string, fn func() error) error {
	if t.pg {
		return t.atomic(ctx, what, fn)
	}
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, t *tx, q string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	// A statement's failure may only show here (PostgreSQL, or a SQLite
	// statement with RETURNING).
	return out, mapErr(rows.Err())
}

func scanOne[T any](s scanner) (T, error) {
	var v T
	err := s.Scan(&v)
	return v, err
}

// where accumulates ANDed conditions of a listing.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// eq adds col = v unless v is empty.
func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

// in adds col IN (vs...) unless vs is empty.
func (w *where) in(col string, vs []string) {
	if len(vs) == 0 {
		return
	}
	args := make([]any, len(vs))
	for i, v := range vs {
		args[i] = v
	}
	w.add(col+" IN (?"+strings.Repeat(", ?", len(vs)-1)+")", args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func whereID(id string) where { return where{conds: []string{"id = ?"}, args: []any{id}} }

// table maps a model type to its table. cols[0] must be "id", and fields
// returns, in cols order, pointers into v (or column adapters) that serve
// both as query arguments and as scan destinations. Every table has a seq
// column giving insertion order and, unless order says otherwise, a
// created_at column.
type table[T any] struct {
	name, noun string
	cols       []string
	fields     func(v *T) []any
	// order is the listing order; "created_at, seq" if empty.
	order string
	// fixed lists columns, among cols, that only insert writes: update
	// leaves them alone and reads them back into v.
	fixed []string
	// page maps the API attributes a store.Page may filter and sort on
	// (store.PageAttrs) to their columns.
	page map[string]pageCol
}

// pageCol is a column a store.Page may filter and sort on.
type pageCol struct {
	name string
	// text columns are compared byte-wise, as Go and SQLite do; PostgreSQL
	// is told so (COLLATE "C"), whatever the database's locale.
	text bool
}

// pageAttrs builds a table's page map from specs "attr", "attr=column",
// with a trailing "#" for columns that are not text (booleans, integers).
func pageAttrs(specs ...string) map[string]pageCol {
	m := make(map[string]pageCol, len(specs))
	for _, spec := range specs {
		c := pageCol{text: !strings.HasSuffix(spec, "#")}
		spec = strings.TrimSuffix(spec, "#")
		attr, col, ok := strings.Cut(spec, "=")
		if !ok {
			col = attr
		}
		c.name = col
		m[attr] = c
	}
	return m
}

var stdCols = []string{"description", "created_at", "updated_at", "revision_number"}

func stdFields(s *model.Standard) []any {
	return []any{&s.Description, tsCol{&s.CreatedAt}, tsCol{&s.UpdatedAt}, &s.RevisionNumber}
}

func (tb *table[T]) list(ctx context.Context, t *tx, w where) ([]T, error) {
	return tb.listPage(ctx, t, w, store.Page{})
}

// listPage lists the rows selected by w, cut by p.
func (tb *table[T]) listPage(ctx context.Context, t *tx, w where, p store.Page) ([]T, error) {
	from, args, err := tb.selection(t, w, p)
	if err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, t, "SELECT "+strings.Join(tb.cols, ", ")+from, func(s scanner) (T, error) {
		var v T
		err := s.Scan(tb.fields(&v)...)
		return v, err
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", tb.noun, err)
	}
	return out, nil
}

// selection is the FROM ... WHERE ... ORDER BY ... [LIMIT] part of a
// listing of the rows selected by w and cut by p, with its arguments. A
// marker is found by subqueries on its id (keyset pagination): rows come
// after it when they differ from it first in a key where they follow it.
func (tb *table[T]) selection(t *tx, w where, p store.Page) (string, []any, error) {
	col := func(attr string) (string, error) {
		c, ok := tb.page[attr]
		if !ok {
			return "", fmt.Errorf("list %ss: %q cannot be filtered or sorted on in the store", tb.noun, attr)
		}
		if c.text && t.pg {
			return c.name + ` COLLATE "C"`, nil
		}
		return c.name, nil
	}
	sel := where{conds: slices.Clone(w.conds), args: slices.Clone(w.args)}
	for _, attr := range slices.Sorted(maps.Keys(p.Eq)) {
		c, err := col(attr)
		if err != nil {
			return "", nil, err
		}
		vs := p.Eq[attr]
		if len(vs) == 0 {
			sel.add("1 = 0")
			continue
		}
		sel.add(c+" IN (?"+strings.Repeat(", ?", len(vs)-1)+")", vs...)
	}
	order := tb.order
	if order == "" {
		order = "created_at, seq"
	}
	if len(p.Order) > 0 {
		keys := make([]string, len(p.Order))
		cols := make([]string, len(p.Order))
		for i, k := range p.Order {
			c, err := col(k.Attr)
			if err != nil {
				return "", nil, err
			}
			cols[i] = c
			keys[i] = c + map[bool]string{false: " ASC", true: " DESC"}[k.Desc]
		}
		order = strings.Join(keys, ", ")
		if p.After != "" {
			var alts []string
			var args []any
			for i, k := range p.Order {
				var conj []string
				for j := range i {
					conj = append(conj, cols[j]+" = (SELECT "+cols[j]+" FROM "+tb.name+" WHERE id = ?)")
					args = append(args, p.After)
				}
				op := map[bool]string{false: " > ", true: " < "}[k.Desc]
				conj = append(conj, cols[i]+op+"(SELECT "+cols[i]+" FROM "+tb.name+" WHERE id = ?)")
				args = append(args, p.After)
				alts = append(alts, "("+strings.Join(conj, " AND ")+")")
			}
			sel.add("("+strings.Join(alts, " OR ")+")", args...)
		}
	} else if p.After != "" {
		// Creation order: its columns ascending, unique together.
		cols := strings.Split(order, ", ")
		var alts []string
		var args []any
		for i := range cols {
			var conj []string
			for j := range i {
				conj = append(conj, cols[j]+" = (SELECT "+cols[j]+" FROM "+tb.name+" WHERE id = ?)")
				args = append(args, p.After)
			}
			conj = append(conj, cols[i]+" > (SELECT "+cols[i]+" FROM "+tb.name+" WHERE id = ?)")
			args = append(args, p.After)
			alts = append(alts, "("+strings.Join(conj, " AND ")+")")
		}
		sel.add("("+strings.Join(alts, " OR ")+")", args...)
	}
	q := " FROM " + tb.name + sel.String() + " ORDER BY " + order
	if p.Limit > 0 {
		q += " LIMIT ?"
		sel.args = append(sel.args, p.Limit)
	}
	return q, sel.args, nil
}

func (tb *table[T]) get(ctx context.Context, t *tx, id string) (*T, error) {
	vs, err := tb.list(ctx, t, whereID(id))
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s %s: %w", tb.noun, id, store.ErrNotFound)
	}
	return &vs[0], nil
}

// insert normalises v's timestamps and inserts it.
func (tb *table[T]) insert(ctx context.Context, t *tx, v *T) error {
	return tb.insertRow(ctx, t, tb.cols, normFields(tb.fields(v)))
}

// insertAt is insert giving the row's seq (see tx.nextSeq).
func (tb *table[T]) insertAt(ctx context.Context, t *tx, v *T, seq int64) error {
	return tb.insertRow(ctx, t, append([]string{"seq"}, tb.cols...), append([]any{seq}, normFields(tb.fields(v))...))
}

func (tb *table[T]) insertRow(ctx context.Context, t *tx, cols []string, args []any) error {
	q := "INSERT INTO " + tb.name + " (" + strings.Join(cols, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(args)-1) + ")"
	_, err := t.exec(ctx, q, args...)
	return err
}

// update normalises v's timestamps and overwrites every column of its row
// but the fixed ones, which it reads back into v.
func (tb *table[T]) update(ctx context.Context, t *tx, v *T) error {
	f := normFields(tb.fields(v))
	var set, back []string
	var args, dest []any
	for i, c := range tb.cols[1:] {
		if slices.Contains(tb.fixed, c) {
			back, dest = append(back, c), append(dest, f[i+1])
			continue
		}
		set, args = append(set, c+" = ?"), append(args, f[i+1])
	}
	q := "UPDATE " + tb.name + " SET " + strings.Join(set, ", ") + " WHERE id = ?"
	args = append(args, f[0])
	if len(back) == 0 {
		return t.execOne(ctx, q, args...)
	}
	rows, err := queryAll(ctx, t, q+" RETURNING "+strings.Join(back, ", "),
		func(s scanner) (struct{}, error) { return struct{}{}, s.Scan(dest...) }, args...)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return store.ErrNotFound
	}
	return nil
}

// delete deletes the row and the tags of the resource (and of its tagged
// children the database deletes with it). Callers run it under atomic: it
// is several statements.
func (tb *table[T]) delete(ctx context.Context, t *tx, id string) error {
	if err := t.deleteTags(ctx, tb.name, id); err != nil {
		return err
	}
	return t.execOne(ctx, "DELETE FROM "+tb.name+" WHERE id = ?", id)
}

func normFields(f []any) []any {
	for _, a := range f {
		if c, ok := a.(tsCol); ok {
			*c.t = normTime(*c.t)
		}
	}
	return f
}
