package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// maxCachedStatements bounds a pool's statement cache: queries built with
// a variable number of placeholders (IN lists) are many; past the bound
// they are simply prepared each time.
const maxCachedStatements = 512

// stmtCache prepares each distinct query once per pool. On SQLite, parsing
// and planning a statement costs more than running these small queries
// (a third of a connection create's CPU); database/sql keeps each cached
// statement prepared per connection and rebinds it to a transaction.
// PostgreSQL (pgx) caches statements itself and gets no cache here.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
	// Background prepares: close cancels them and waits, so that none is
	// still opening a connection (which recreates SQLite's WAL and
	// shared-memory files) after the store is closed.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newStmtCache(db *sql.DB) *stmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, pending: map[string]bool{}, ctx: ctx, cancel: cancel}
}

// stmt returns the query's statement bound to tx, or nil when it is not
// prepared yet (the caller then runs the query text). A new query is
// prepared in the background: DB.PrepareContext needs a free connection
// of the pool, and a writer pool's only connection is the caller's.
// Rebinding a cached statement to tx prepares it on tx's own connection
// if needed, which never waits for the pool.
func (c *stmtCache) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	st, ok := c.m[q]
	if !ok && !c.closed && len(c.m) < maxCachedStatements && !c.pending[q] {
		c.pending[q] = true
		c.wg.Add(1)
		go c.prepare(q)
	}
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

func (c *stmtCache) prepare(q string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	st, err := c.db.PrepareContext(ctx, q)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, q)
	if err != nil {
		return // the query reports its own error when it runs
	}
	if c.closed {
		st.Close()
		return
	}
	c.m[q] = st
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	clear(c.m)
}
