package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client sends admin requests (noauth) to a server's Networking API and
// decodes the replies, for the harnesses that drive a server through its
// API.
type Client struct {
	// URL is the API's base URL.
	URL string
	// Timeout bounds each request (30 s if zero).
	Timeout time.Duration
}

// Do sends a request with body as JSON (none if nil) and returns the
// status and the body.
func (c Client) Do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// Try sends a request and decodes the reply (nil when empty); a status
// other than want is an error.
func (c Client) Try(method, path string, body any, want int) (map[string]any, error) {
	code, data, err := c.Do(method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if code != want {
		return nil, fmt.Errorf("%s %s = %d %.300s, want %d", method, path, code, data, want)
	}
	if len(data) == 0 {
		return nil, nil
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s %s: decode %.300q: %w", method, path, data, err)
	}
	return out, nil
}

// TryCreate POSTs a resource of kind ("network", "ipsec_site_connection"...)
// and returns it; a reply without an id is an error.
func (c Client) TryCreate(kind string, attrs map[string]any) (map[string]any, error) {
	out, err := c.Try("POST", Collection(kind), map[string]any{kind: attrs}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	obj, _ := out[kind].(map[string]any)
	if id, _ := obj["id"].(string); id == "" {
		return nil, fmt.Errorf("POST %s: no id in %v", Collection(kind), out)
	}
	return obj, nil
}

// Gone sends a deletion that may find its target already gone: success
// or 404.
func (c Client) Gone(method, path string, body any) error {
	code, data, err := c.Do(method, path, body)
	if err == nil && code >= 300 && code != http.StatusNotFound {
		err = fmt.Errorf("%s %s = %d %.300s", method, path, code, data)
	}
	return err
}

// collections are the VPN resources' paths; the core ones are
// /v2.0/<kind>s.
var collections = map[string]string{
	"ikepolicy": "/v2.0/vpn/ikepolicies", "ipsecpolicy": "/v2.0/vpn/ipsecpolicies",
	"vpnservice": "/v2.0/vpn/vpnservices", "endpoint_group": "/v2.0/vpn/endpoint-groups",
	"ipsec_site_connection": "/v2.0/vpn/ipsec-site-connections",
	"security_group":        "/v2.0/security-groups", "security_group_rule": "/v2.0/security-group-rules",
	"floatingip": "/v2.0/floatingips",
}

// Collection is the path of kind's collection.
func Collection(kind string) string {
	if p, ok := collections[kind]; ok {
		return p
	}
	return "/v2.0/" + kind + "s"
}
