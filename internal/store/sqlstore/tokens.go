package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The agents' bus token generations (migration 0006_agent_tokens). They
// are credentials' state, read by the embedded bus when an agent connects
// (bus.Generations), not resources of the API, so they live outside
// store.Tx.

// AgentTokenGeneration is host's current token generation: 0 if its token
// was never rotated.
func (db *DB) AgentTokenGeneration(ctx context.Context, host string) (uint64, error) {
	var gen int64
	err := db.run(ctx, db.r, db.rs, &sql.TxOptions{ReadOnly: true}, false, func(t *tx) error {
		rows, err := queryAll(ctx, t, "SELECT generation FROM agent_tokens WHERE host = ?", scanOne[int64], host)
		if len(rows) > 0 {
			gen = rows[0]
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("agent token generation of %s: %w", host, err)
	}
	return uint64(gen), nil
}

// AgentTokenGenerations are the generations of every host whose token was
// ever rotated.
func (db *DB) AgentTokenGenerations(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := db.run(ctx, db.r, db.rs, &sql.TxOptions{ReadOnly: true}, false, func(t *tx) error {
		rows, err := t.query(ctx, "SELECT host, generation FROM agent_tokens")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var host string
			var gen int64
			if err := rows.Scan(&host, &gen); err != nil {
				return err
			}
			out[host] = uint64(gen)
		}
		return mapErr(rows.Err())
	})
	if err != nil {
		return nil, fmt.Errorf("agent token generations: %w", err)
	}
	return out, nil
}

// RotateAgentToken moves host's token to the next generation and returns
// it: from now on only that generation's token is valid.
func (db *DB) RotateAgentToken(ctx context.Context, host string) (uint64, error) {
	if db.dialect == SQLite {
		db.wq.Lock()
		defer db.wq.Unlock()
	}
	var gen int64
	now := time.Now()
	err := db.run(ctx, db.w, db.ws, nil, true, func(t *tx) error {
		gens, err := queryAll(ctx, t, `INSERT INTO agent_tokens (host, generation, rotated_at) VALUES (?, 1, ?)
			ON CONFLICT (host) DO UPDATE SET generation = agent_tokens.generation + 1, rotated_at = excluded.rotated_at
			RETURNING generation`, scanOne[int64], host, tsCol{&now})
		if err == nil && len(gens) != 1 {
			err = errors.New("no generation returned")
		}
		if err == nil {
			gen = gens[0]
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rotate the agent token of %s: %w", host, err)
	}
	return uint64(gen), nil
}
