package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/identity"
)

// fakeKeystone speaks enough of Keystone v3's GET /v3/auth/tokens for
// Keystone: a token validates itself (X-Auth-Token = X-Subject-Token). It
// counts calls per token, tracks how many are in flight at once, and can
// delay its answers or hold them until release is closed.
type fakeKeystone struct {
	*httptest.Server
	delay   time.Duration
	release chan struct{} // nil: answer after delay
	status  int           // non-zero: answer every validation with it
	expires time.Time

	mu       sync.Mutex
	valid    map[string]string // token -> project
	calls    map[string]int
	inFlight int
	maxIn    int
	arrived  chan struct{} // gets a value as each call arrives
}

func newFakeKeystone(t *testing.T) *fakeKeystone {
	f := &fakeKeystone{valid: map[string]string{}, calls: map[string]int{},
		arrived: make(chan struct{}, 1024), expires: time.Now().Add(time.Hour)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v3/auth/tokens" {
		http.NotFound(w, r)
		return
	}
	token := r.Header.Get("X-Subject-Token")
	f.mu.Lock()
	f.calls[token]++
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	project, ok := f.valid[token]
	f.mu.Unlock()
	f.arrived <- struct{}{}
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	time.Sleep(f.delay)
	if f.release != nil {
		<-f.release
	}
	switch {
	case f.status != 0:
		w.WriteHeader(f.status)
		return
	case r.Header.Get("X-Auth-Token") != token || !ok:
		http.Error(w, `{"error":{"code":404,"title":"Not Found"}}`, http.StatusNotFound)
		return
	}
	var body tokenBody
	body.Token.ExpiresAt = f.expires
	body.Token.User.ID = "user-" + project
	body.Token.Project = &struct {
		ID string `json:"id"`
	}{project}
	body.Token.Roles = []struct {
		Name string `json:"name"`
	}{{"Member"}, {"reader"}}
	w.Header().Set("X-Subject-Token", token)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func (f *fakeKeystone) issue(token, project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid[token] = project
}

func (f *fakeKeystone) callsFor(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[token]
}

func (f *fakeKeystone) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeKeystone) maxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn
}

func tokenRequest(ctx context.Context, token string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v2.0/networks", nil)
	r.Header.Set("X-Auth-Token", token)
	return r
}

// burst authenticates the tokens concurrently, released together, and
// returns each answer in order.
func burst(k *Keystone, tokens []string) ([]identity.Identity, []error) {
	ids, errs := make([]identity.Identity, len(tokens)), make([]error, len(tokens))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, tok := range tokens {
		wg.Go(func() {
			<-start
			ids[i], errs[i] = k.Authenticate(tokenRequest(context.Background(), tok))
		})
	}
	close(start)
	wg.Wait()
	return ids, errs
}

// waitWaiters waits until n requests wait on the validation of token.
func waitWaiters(t *testing.T, k *Keystone, token string, n int) {
	t.Helper()
	key := sha256.Sum256([]byte(token))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		k.mu.Lock()
		got := 0
		if v := k.flight[key]; v != nil {
			got = v.waiters
		}
		k.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait on the validation, want %d", got, n)
		}
	}
}

func TestKeystoneColdBurstValidatesOnce(t *testing.T) {
	for _, clients := range []int{32, 128} {
		t.Run("", func(t *testing.T) {
			ks := newFakeKeystone(t)
			ks.release = make(chan struct{})
			ks.issue("tok-a", "proj-a")
			k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
			tokens := slices.Repeat([]string{"tok-a"}, clients)
			var ids []identity.Identity
			var errs []error
			done := make(chan struct{})
			go func() { ids, errs = burst(k, tokens); close(done) }()
			waitWaiters(t, k, "tok-a", clients) // everyone asked before Keystone answers
			close(ks.release)
			<-done
			want := identity.Identity{UserID: "user-proj-a", ProjectID: "proj-a", Roles: []string{"member", "reader"}}
			for i := range clients {
				if errs[i] != nil || !slices.Equal(ids[i].Roles, want.Roles) || ids[i].ProjectID != want.ProjectID || ids[i].UserID != want.UserID {
					t.Fatalf("request %d: %+v, %v", i, ids[i], errs[i])
				}
			}
			if got := ks.callsFor("tok-a"); got != 1 {
				t.Fatalf("%d concurrent requests with one token made %d validations", clients, got)
			}
			// The answer is cached: later requests do not ask again.
			if _, err := k.Authenticate(tokenRequest(context.Background(), "tok-a")); err != nil || ks.callsFor("tok-a") != 1 {
				t.Fatalf("cached token: %v, %d validations", err, ks.callsFor("tok-a"))
			}
		})
	}
}

func TestKeystoneInvalidBurstValidatesOnce(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.release = make(chan struct{})
	k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
	const clients = 32
	var errs []error
	done := make(chan struct{})
	go func() { _, errs = burst(k, slices.Repeat([]string{"bogus"}, clients)); close(done) }()
	waitWaiters(t, k, "bogus", clients)
	close(ks.release)
	<-done
	for i, err := range errs {
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("request %d: %v, want ErrUnauthorized", i, err)
		}
	}
	if got := ks.callsFor("bogus"); got != 1 {
		t.Fatalf("%d concurrent requests with one invalid token made %d validations", clients, got)
	}
	// A refusal is not cached: the next request asks again.
	if _, err := k.Authenticate(tokenRequest(context.Background(), "bogus")); !errors.Is(err, ErrUnauthorized) || ks.callsFor("bogus") != 2 {
		t.Fatalf("invalid token again: %v, %d validations", err, ks.callsFor("bogus"))
	}
}

func TestKeystoneBoundsConcurrency(t *testing.T) {
	for _, tc := range []struct {
		max, want int
	}{{0, DefaultMaxConcurrency}, {3, 3}, {1, 1}} {
		t.Run("", func(t *testing.T) {
			ks := newFakeKeystone(t)
			ks.delay = 20 * time.Millisecond
			var tokens []string
			for i := range 48 {
				tok := fmt.Sprintf("tok-%d", i)
				ks.issue(tok, "p")
				tokens = append(tokens, tok, tok) // two requests per token
			}
			k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
			k.MaxConcurrency = tc.max
			_, errs := burst(k, tokens)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if got := ks.maxInFlight(); got > tc.want || got < 1 {
				t.Fatalf("MaxConcurrency %d: %d validations in flight at once, want at most %d", tc.max, got, tc.want)
			}
			if tc.want > 1 && ks.maxInFlight() < 2 {
				t.Errorf("MaxConcurrency %d: validations ran one at a time", tc.max)
			}
			if got := ks.totalCalls(); got != 48 {
				t.Fatalf("48 tokens made %d validations", got)
			}
		})
	}
}

func TestKeystoneWaiterLeaves(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.release = make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(ks.release) }) }) // a failing test must not hang the fake
	ks.issue("zq7Hx-secret", "p")
	k := NewKeystone(ks.URL+"/v3", 5*time.Minute)

	// The request that starts the validation is the one that leaves.
	ctx, cancel := context.WithCancel(context.Background())
	leaver := make(chan error, 1)
	go func() {
		_, err := k.Authenticate(tokenRequest(ctx, "zq7Hx-secret"))
		leaver <- err
	}()
	<-ks.arrived
	var ids []identity.Identity
	var errs []error
	done := make(chan struct{})
	go func() { ids, errs = burst(k, slices.Repeat([]string{"zq7Hx-secret"}, 8)); close(done) }()
	waitWaiters(t, k, "zq7Hx-secret", 9)

	cancel()
	select {
	case err := <-leaver:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnauthorized) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		if strings.Contains(err.Error(), "zq7Hx") {
			t.Fatalf("error names the token: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancelled waiter still waits for Keystone")
	}
	select {
	case <-done:
		t.Fatal("the others stopped waiting when one left")
	default:
	}
	release.Do(func() { close(ks.release) })
	<-done
	for i := range ids {
		if errs[i] != nil || ids[i].ProjectID != "p" {
			t.Fatalf("waiter %d after another left: %+v, %v", i, ids[i], errs[i])
		}
	}
	if got := ks.callsFor("zq7Hx-secret"); got != 1 {
		t.Fatalf("%d validations, want 1", got)
	}
}

func TestKeystoneValidationTimesOut(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.release = make(chan struct{})
	t.Cleanup(func() { close(ks.release) })
	ks.issue("zq7Hx-stuck", "p")
	k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
	k.ValidateTimeout = 50 * time.Millisecond
	_, err := k.Authenticate(tokenRequest(context.Background(), "zq7Hx-stuck"))
	if err == nil || errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "zq7Hx-stuck") {
		t.Fatalf("stuck Keystone: %v", err)
	}
}

func TestKeystoneErrorsHideToken(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.status = http.StatusInternalServerError
	k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
	const secret = "gAAAAAB-secret-token-value"
	_, err := k.Authenticate(tokenRequest(context.Background(), secret))
	if err == nil || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Keystone 500: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error names the token: %v", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.flight) != 0 || len(k.cache) != 0 {
		t.Fatalf("failed validation left state: %d in flight, %d cached", len(k.flight), len(k.cache))
	}
}

func TestKeystoneCacheUntilExpiry(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.issue("tok", "p")
	ks.expires = time.Now().Add(time.Minute)
	k := NewKeystone(ks.URL+"/v3", 5*time.Minute)
	auth := func() {
		t.Helper()
		if _, err := k.Authenticate(tokenRequest(context.Background(), "tok")); err != nil {
			t.Fatal(err)
		}
	}
	auth()
	auth()
	if got := ks.callsFor("tok"); got != 1 {
		t.Fatalf("cached token: %d validations", got)
	}
	// Past the token's expiry (before the TTL) Keystone is asked again.
	k.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	auth()
	if got := ks.callsFor("tok"); got != 2 {
		t.Fatalf("expired token: %d validations, want 2", got)
	}

	// With no caching every request asks.
	k0 := NewKeystone(ks.URL+"/v3", 0)
	for range 3 {
		if _, err := k0.Authenticate(tokenRequest(context.Background(), "tok")); err != nil {
			t.Fatal(err)
		}
	}
	if got := ks.callsFor("tok"); got != 5 {
		t.Fatalf("CacheTTL 0: %d validations, want 5", got)
	}
}
