package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/neutrino-net/neutrino/internal/identity"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Keystone validates X-Auth-Token against a Keystone v3 identity service.
// A token validates itself (Keystone lets a token's subject read it), so no
// service credentials are needed. Results are cached until the token
// expires or CacheTTL passes, whichever is first.
//
// Concurrent requests carrying the same uncached token share one
// validation, which runs detached from any one request (a request that
// goes away stops waiting; the others still get the answer), and at most
// MaxConcurrency validations are in flight towards Keystone at once. With
// CacheTTL 0 every request asks Keystone, but one that arrives while its
// token is being validated takes that validation's answer.
type Keystone struct {
	URL      string // e.g. http://127.0.0.1:5000/v3
	CacheTTL time.Duration
	Client   *http.Client
	Now      func() time.Time
	// MaxConcurrency bounds the validations in flight towards Keystone;
	// 0 means DefaultMaxConcurrency. Set it before the first request.
	MaxConcurrency int
	// ValidateTimeout bounds one validation, waiting for a slot included;
	// 0 means DefaultValidateTimeout. Set it before the first request.
	ValidateTimeout time.Duration

	mu     sync.Mutex
	cache  map[[32]byte]cached
	flight map[[32]byte]*validation // keyed by the token's SHA-256, never the token
	sem    chan struct{}
}

// Defaults of Keystone's bounds.
const (
	DefaultMaxConcurrency  = 8
	DefaultValidateTimeout = 30 * time.Second
)

type cached struct {
	id    identity.Identity
	until time.Time
}

// validation is one call to Keystone that concurrent requests share.
type validation struct {
	done    chan struct{} // closed when id and err are set
	id      identity.Identity
	err     error
	waiters int // requests that asked for it, under Keystone.mu
}

// maxCached bounds the token cache; expired entries are dropped first.
const maxCached = 10000

// NewKeystone returns a Keystone authenticator for url.
func NewKeystone(url string, ttl time.Duration) *Keystone {
	return &Keystone{URL: strings.TrimRight(url, "/"), CacheTTL: ttl, Client: &http.Client{Timeout: 10 * time.Second}, Now: time.Now}
}

// Authenticate implements Authenticator.
func (k *Keystone) Authenticate(r *http.Request) (identity.Identity, error) {
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		return identity.Identity{}, ErrUnauthorized
	}
	key := sha256.Sum256([]byte(token))
	now := k.Now()
	k.mu.Lock()
	if c, ok := k.cache[key]; ok && now.Before(c.until) {
		k.mu.Unlock()
		return c.id, nil
	}
	v, ok := k.flight[key]
	if !ok {
		v = &validation{done: make(chan struct{})}
		if k.flight == nil {
			k.flight = map[[32]byte]*validation{}
		}
		if k.sem == nil {
			k.sem = make(chan struct{}, cmp.Or(max(k.MaxConcurrency, 0), DefaultMaxConcurrency))
		}
		k.flight[key] = v
		go k.run(key, token, v)
	}
	v.waiters++
	k.mu.Unlock()
	select {
	case <-v.done:
		return v.id, v.err
	case <-r.Context().Done():
		return identity.Identity{}, fmt.Errorf("keystone: stopped waiting for token validation: %w", r.Context().Err())
	}
}

// run validates token for everyone waiting on v, with a context of its
// own, and caches a success.
func (k *Keystone) run(key [32]byte, token string, v *validation) {
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(max(k.ValidateTimeout, 0), DefaultValidateTimeout))
	defer cancel()
	now := k.Now()
	id, expires, err := k.validateBounded(ctx, token)
	k.mu.Lock()
	delete(k.flight, key)
	if err == nil {
		until := now.Add(k.CacheTTL)
		if expires.Before(until) {
			until = expires
		}
		if k.cache == nil || len(k.cache) >= maxCached {
			k.prune(now)
		}
		k.cache[key] = cached{id: id, until: until}
	}
	k.mu.Unlock()
	v.id, v.err = id, err
	close(v.done)
}

// validateBounded validates token once a slot towards Keystone is free.
func (k *Keystone) validateBounded(ctx context.Context, token string) (identity.Identity, time.Time, error) {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return identity.Identity{}, time.Time{}, fmt.Errorf("keystone: waiting for a validation slot: %w", ctx.Err())
	}
	defer func() { <-k.sem }()
	return k.validate(ctx, token)
}

func (k *Keystone) prune(now time.Time) {
	if k.cache == nil {
		k.cache = map[[32]byte]cached{}
		return
	}
	for key, c := range k.cache {
		if !now.Before(c.until) {
			delete(k.cache, key)
		}
	}
	if len(k.cache) >= maxCached {
		clear(k.cache)
	}
}

type tokenBody struct {
	Token struct {
		ExpiresAt time.Time `json:"expires_at"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
		Project *struct {
			ID string `json:"id"`
		} `json:"project"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

func (k *Keystone) validate(ctx context.Context, token string) (identity.Identity, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/auth/tokens", nil)
	if err != nil {
		return identity.Identity{}, time.Time{}, err
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("X-Subject-Token", token)
	resp, err := k.Client.Do(req)
	if err != nil {
		return identity.Identity{}, time.Time{}, fmt.Errorf("keystone: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusNotFound, http.StatusForbidden:
		return identity.Identity{}, time.Time{}, ErrUnauthorized
	default:
		return identity.Identity{}, time.Time{}, fmt.Errorf("keystone: token validation answered %s", resp.Status)
	}
	var body tokenBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return identity.Identity{}, time.Time{}, fmt.Errorf("keystone: decode token: %w", err)
	}
	t := body.Token
	if t.User.ID == "" || t.Project == nil || t.Project.ID == "" {
		// Unscoped or domain-scoped tokens carry no project.
		return identity.Identity{}, time.Time{}, ErrUnauthorized
	}
	id := identity.Identity{UserID: t.User.ID, ProjectID: t.Project.ID}
	for _, r := range t.Roles {
		id.Roles = append(id.Roles, strings.ToLower(r.Name))
	}
	return id, t.ExpiresAt, nil
}
