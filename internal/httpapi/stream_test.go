package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store"
)

// table is rows in creation order with the store's Page semantics for
// what streamList asks: an id filter, After (nothing after a missing id)
// and Limit. hook runs before each read.
type table struct {
	rows  []string
	reads int
	hook  func(p store.Page)
}

func (tb *table) list(_ *http.Request, p store.Page) (listing, error) {
	tb.reads++
	if tb.hook != nil {
		tb.hook(p)
	}
	var out []object
	from := 0
	if p.After != "" {
		i := slices.Index(tb.rows, p.After)
		if i < 0 {
			return objects(nil), nil
		}
		from = i + 1
	}
	for _, id := range tb.rows[from:] {
		if ids, ok := p.Eq["id"]; ok && !slices.Contains(ids, any(id)) {
			continue
		}
		out = append(out, object{"id": id})
		if p.Limit > 0 && len(out) == p.Limit {
			break
		}
	}
	return objects(out), nil
}

func (tb *table) remove(id string) {
	tb.rows = slices.DeleteFunc(tb.rows, func(r string) bool { return r == id })
}

func streamed(t *testing.T, tb *table) []string {
	t.Helper()
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := httptest.NewRecorder()
	a.streamList(w, httptest.NewRequest("GET", "/v2.0/things", nil), crud{res: &resource{plural: "things"}, list: tb.list}, store.Page{}, nil)
	var body struct{ Things []struct{ ID string } }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
		t.Fatalf("reply %d %.200s: %v", w.Code, w.Body, err)
	}
	var out []string
	for _, th := range body.Things {
		out = append(out, th.ID)
	}
	return out
}

func rows(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%05d", i)
	}
	return out
}

// TestStreamListChunks: a whole list is read a chunk at a time and comes
// out whole, also when its length is a multiple of the chunk.
func TestStreamListChunks(t *testing.T) {
	for _, n := range []int{0, 1, listChunk - 1, listChunk, 2 * listChunk, 2*listChunk + 7} {
		tb := &table{rows: rows(n)}
		if got := streamed(t, tb); !slices.Equal(got, rows(n)) {
			t.Fatalf("%d rows: listed %d", n, len(got))
		}
		if want := n/listChunk + 1; tb.reads > want+1 || tb.reads < want {
			t.Fatalf("%d rows: %d reads, want about %d", n, tb.reads, want)
		}
	}
}

// TestStreamListMarkerDeleted: when the row a chunk starts after is
// deleted between two reads, the walk starts over and neither loses nor
// repeats a row.
func TestStreamListMarkerDeleted(t *testing.T) {
	all := rows(3*listChunk + 10)
	tb := &table{rows: slices.Clone(all)}
	deleted := map[string]bool{}
	tb.hook = func(p store.Page) {
		if p.After != "" && p.Eq == nil && len(deleted) < 2 && !deleted[p.After] {
			deleted[p.After] = true
			tb.remove(p.After)
		}
	}
	got := streamed(t, tb)
	if len(deleted) != 2 {
		t.Fatalf("the hook deleted %d markers", len(deleted))
	}
	// A deleted marker was itself listed before it went.
	for id := range deleted {
		if !slices.Contains(got, id) {
			t.Fatalf("marker %s not listed before its deletion", id)
		}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("listed %d rows, want all %d in order", len(got), len(all))
	}
}

// TestStreamListErrorAborts: a read failing after the status went out cuts
// the connection (http.ErrAbortHandler) instead of ending the JSON as if
// the list were whole.
func TestStreamListErrorAborts(t *testing.T) {
	tb := &table{rows: rows(2 * listChunk)}
	failing := func(r *http.Request, p store.Page) (listing, error) {
		if p.After != "" {
			return listing{}, errors.New("database gone")
		}
		return tb.list(r, p)
	}
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := httptest.NewRecorder()
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	a.streamList(w, httptest.NewRequest("GET", "/v2.0/things", nil), crud{res: &resource{plural: "things"}, list: failing}, store.Page{}, nil)
	t.Fatal("streamList returned after a failed read")
}
