package service

import (
	"context"
	"sync"

	"github.com/neutrino-net/neutrino/internal/store"
)

// batch is one write transaction that several calls of the service join
// (a bulk create), with the hints they send held back until it commits.
type batch struct {
	tx    store.Tx
	mu    sync.Mutex
	after []func()
}

type batchKey struct{}

func batchOf(ctx context.Context) *batch {
	b, _ := ctx.Value(batchKey{}).(*batch)
	return b
}

// later queues fn to run once the batch has committed.
func (b *batch) later(fn func()) {
	b.mu.Lock()
	b.after = append(b.after, fn)
	b.mu.Unlock()
}

// Batch runs fn with a context in which every call of the service joins
// one write transaction: committed if fn returns nil, rolled back
// otherwise, so that the calls take effect all together or not at all
// (the reference's bulk create). Quotas count what earlier calls of the
// batch created. Hints to agents go out after the commit. The calls must
// run one at a time. Within a batch, Batch just calls fn.
func (s *Service) Batch(ctx context.Context, fn func(ctx context.Context) error) error {
	if batchOf(ctx) != nil {
		return fn(ctx)
	}
	b := &batch{}
	err := s.write(ctx, func(tx store.Tx) error {
		b.tx, b.after = tx, nil
		return fn(context.WithValue(ctx, batchKey{}, b))
	})
	if err != nil {
		return err
	}
	for _, f := range b.after {
		f()
	}
	return nil
}

// outsideBatch is ctx without its batch, for work after the commit.
func outsideBatch(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), batchKey{}, (*batch)(nil))
}
