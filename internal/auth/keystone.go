package auth

import (
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
type Keystone struct {
	URL      string // e.g. http://127.0.0.1:5000/v3
	CacheTTL time.Duration
	Client   *http.Client
	Now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	id    identity.Identity
	until time.Time
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
	c, ok := k.cache[key]
	k.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.id, nil
	}
	id, expires, err := k.validate(r.Context(), token)
	if err != nil {
		return identity.Identity{}, err
	}
	until := now.Add(k.CacheTTL)
	if expires.Before(until) {
		until = expires
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cache == nil || len(k.cache) >= maxCached {
		k.prune(now)
	}
	k.cache[key] = cached{id: id, until: until}
	return id, nil
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
