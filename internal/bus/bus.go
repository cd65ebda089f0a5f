// Package bus connects the server and the agents over NATS: an embedded
// NATS server (unless an external cluster is configured), per-host agent
// credentials, and connections whose permissions let an agent use only
// its own host's subjects.
package bus

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// ServerUser is the NATS user of Neutrino servers.
const ServerUser = "neutrino-server"

// agentUserPrefix starts the NATS user name of an agent: "agent:<host>".
const agentUserPrefix = "agent:"

// ValidHost reports whether host can name NATS subjects: one token of
// letters, digits, '-' and '_'.
func ValidHost(host string) bool {
	if host == "" || len(host) > 64 {
		return false
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// AgentToken is the credential of the agent on host at token generation 0
// (a host whose token was never rotated): an HMAC of the host name under
// the deployment's secret, so a token is good for one host only.
func AgentToken(secret []byte, host string) string { return AgentTokenAt(secret, host, 0) }

// AgentTokenAt is the credential of the agent on host at a token
// generation. Rotating a host's token moves it to the next generation, and
// the embedded server accepts only the current one. Generation 0 is the
// token of releases before rotation existed.
func AgentTokenAt(secret []byte, host string, generation uint64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(agentUserPrefix + host))
	if generation > 0 {
		// '#' cannot occur in a host name, so no two (host, generation)
		// pairs sign the same text.
		m.Write([]byte("#" + strconv.FormatUint(generation, 10)))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Generations are the agents' token generations, kept where every server
// sees them (the database). A host never rotated is at generation 0.
type Generations interface {
	// AgentTokenGeneration is host's current generation.
	AgentTokenGeneration(ctx context.Context, host string) (uint64, error)
	// AgentTokenGenerations are the generations of every host ever
	// rotated; a host not in the map is at 0.
	AgentTokenGenerations(ctx context.Context) (map[string]uint64, error)
}

// ServerToken is the credential of Neutrino servers.
func ServerToken(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ServerUser))
	return hex.EncodeToString(m.Sum(nil))
}

// AgentPermissions are what the agent on host may do: publish its own
// requests, heartbeats and reports; receive its own hints and replies.
func AgentPermissions(host string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			agentv1.SyncSubject(host), agentv1.HeartbeatSubject(host), agentv1.StatusSubject(host),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			agentv1.HintSubject(host), agentv1.InboxPrefix(host) + ".>",
		}},
	}
}

// authenticator checks servers and agents against the secret and the
// hosts' token generations, maps each agent to its host's permissions, and
// remembers which generation each agent connection authenticated with.
type authenticator struct {
	secret []byte
	gens   Generations // nil: every host at generation 0
	log    *slog.Logger

	mu    sync.Mutex
	conns map[uint64]agentConn // by NATS client id
}

// agentConn is an agent's connection: its host and token generation.
type agentConn struct {
	host       string
	generation uint64
}

func (a *authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	user, pass := o.Username, o.Password
	reason := "bad credentials"
	if user == ServerUser {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(ServerToken(a.secret))) == 1 {
			c.RegisterUser(&server.User{Username: user})
			return true
		}
	} else if host, ok := strings.CutPrefix(user, agentUserPrefix); ok && ValidHost(host) {
		gen, err := a.generation(host)
		if err != nil {
			// Fail closed: without the generation an old token might pass.
			a.log.Error("bus: rejected connection: token generation unknown", "user", user,
				"remote", fmt.Sprint(c.RemoteAddress()), "error", err)
			return false
		}
		if subtle.ConstantTimeCompare([]byte(pass), []byte(AgentTokenAt(a.secret, host, gen))) == 1 {
			c.RegisterUser(&server.User{Username: user, Permissions: AgentPermissions(host)})
			a.mu.Lock()
			a.conns[c.GetID()] = agentConn{host: host, generation: gen}
			a.mu.Unlock()
			return true
		}
		if a.revoked(host, pass, gen) {
			reason = "revoked token (rotated)"
		}
	}
	a.log.Warn("bus: rejected connection", "user", user, "remote", fmt.Sprint(c.RemoteAddress()), "reason", reason)
	return false
}

func (a *authenticator) generation(host string) (uint64, error) {
	if a.gens == nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.gens.AgentTokenGeneration(ctx, host)
}

// revoked reports whether pass is one of host's tokens before generation
// gen, so that the log tells a rotated token from a wrong one.
func (a *authenticator) revoked(host, pass string, gen uint64) bool {
	for g := gen; g > 0 && gen-g < 1000; g-- {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(AgentTokenAt(a.secret, host, g-1))) == 1 {
			return true
		}
	}
	return false
}

// stale returns the agent connections made with an older generation than
// their host's in gens, and forgets connections the server no longer has.
// A connection newer than gens (its host rotated after gens was read) is
// left alone.
func (a *authenticator) stale(gens map[string]uint64, alive func(cid uint64) bool) map[uint64]agentConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[uint64]agentConn{}
	for cid, c := range a.conns {
		switch {
		case !alive(cid):
			delete(a.conns, cid)
		case c.generation < gens[c.host]:
			out[cid] = c
			delete(a.conns, cid)
		}
	}
	return out
}

// EmbeddedOptions configure the embedded NATS server.
type EmbeddedOptions struct {
	// Listen is host:port for agents; empty serves in-process clients only.
	Listen string
	Secret []byte
	// TLS, when set, is the server side of TLS (see ServerTLS): every
	// client over the network must then use TLS; there is no plaintext
	// fallback. In-process clients need none.
	TLS *tls.Config
	// Generations, when set, are the hosts' token generations: only the
	// current generation's token is accepted, and connections made with an
	// older one are closed within RevocationCheck. Nil: generation 0 only.
	Generations Generations
	// RevocationCheck is how often the server looks for connections whose
	// host's token was rotated (default 2s).
	RevocationCheck time.Duration
	Logger          *slog.Logger
}

// Embedded is a NATS server inside the Neutrino server process.
type Embedded struct {
	ns   *server.Server
	url  string
	auth *authenticator
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
	leaf []byte // the TLS certificate served (DER), nil without TLS
}

// StartEmbedded starts a NATS server and waits until it accepts clients.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("bus: empty secret")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RevocationCheck <= 0 {
		opts.RevocationCheck = 2 * time.Second
	}
	auth := &authenticator{secret: opts.Secret, gens: opts.Generations, log: opts.Logger, conns: map[uint64]agentConn{}}
	so := &server.Options{
		ServerName: "neutrino", NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
		CustomClientAuthentication: auth,
	}
	if opts.TLS != nil {
		if len(opts.TLS.Certificates) == 0 && opts.TLS.GetCertificate == nil {
			return nil, errors.New("bus: TLS configuration without a certificate")
		}
		so.TLSConfig = opts.TLS
		so.TLSTimeout = 5
	}
	if opts.Listen == "" {
		so.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("bus: listen address %q: %w", opts.Listen, err)
		}
		if so.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("bus: listen port %q: %w", port, err)
		}
		so.Host = host
		if so.Port == 0 {
			so.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	go ns.Start()
	if !ready(ns, so.DontListen, 10*time.Second) {
		ns.Shutdown()
		return nil, errors.New("bus: embedded NATS did not start")
	}
	e := &Embedded{ns: ns, auth: auth, log: opts.Logger, done: make(chan struct{})}
	if !so.DontListen {
		e.url = ns.ClientURL()
	}
	if opts.TLS != nil && len(opts.TLS.Certificates) > 0 {
		e.leaf = opts.TLS.Certificates[0].Certificate[0]
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go func() {
		defer close(e.done)
		if opts.Generations != nil {
			e.dropRevoked(ctx, opts.Generations, opts.RevocationCheck)
		}
	}()
	return e, nil
}

// dropRevoked closes, every period, the agent connections made with a
// token that has since been rotated.
func (e *Embedded) dropRevoked(ctx context.Context, gens Generations, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, period)
		current, err := gens.AgentTokenGenerations(qctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("bus: cannot read agent token generations; rotated tokens' connections stay open until it can", "error", err)
			}
			continue
		}
		stale := e.auth.stale(current, func(cid uint64) bool { return e.ns.GetClient(cid) != nil })
		for cid, c := range stale {
			if err := e.ns.DisconnectClientByID(cid); err == nil {
				e.log.Info("bus: closed an agent connection whose token was rotated", "host", c.host,
					"generation", c.generation, "current", current[c.host])
			}
		}
	}
}

// ready waits for the server: a listening one until it accepts clients, an
// in-process one until it runs.
func ready(ns *server.Server, inProcess bool, wait time.Duration) bool {
	if !inProcess {
		return ns.ReadyForConnections(wait)
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ns.Running() {
			return true
		}
	}
	return false
}

// URL is the nats:// address agents connect to ("" when not listening).
func (e *Embedded) URL() string { return e.url }

// Connect opens an in-process connection with the given credentials.
func (e *Embedded) Connect(user, pass string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append(opts, nats.InProcessServer(e.ns), nats.UserInfo(user, pass))
	return nats.Connect("", opts...)
}

// AgentTLS is a client TLS configuration for an agent in this process
// (neutrino up's local agent): it trusts exactly the certificate this
// server serves, whatever names the certificate carries. Nil without TLS.
func (e *Embedded) AgentTLS() *tls.Config {
	if e.leaf == nil {
		return nil
	}
	leaf := e.leaf
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and name checks are replaced by VerifyConnection,
		// which pins the one certificate.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf) {
				return errors.New("bus: the server's certificate is not the embedded server's")
			}
			return nil
		},
	}
}

// Shutdown stops the server.
func (e *Embedded) Shutdown() {
	e.stop()
	<-e.done
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
}

// ServerTLS loads the embedded server's certificate and key (PEM files).
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("bus: TLS certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// ClientTLS is the TLS configuration of a client that verifies the bus's
// certificate against the CA certificates in caFile (PEM) and the
// address's host name or IP.
func ClientTLS(caFile string) (*tls.Config, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("bus: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("bus: TLS CA %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// DialOptions are the connection options shared by servers and agents:
// reconnect forever, with the reconnect and disconnect events logged.
func DialOptions(name string, log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second), nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("bus: disconnected", "error", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("bus: reconnected", "url", c.ConnectedUrlRedacted()) }),
	}
}

// DialAgent connects the agent of host to url with its token.
func DialAgent(ctx context.Context, url, host, token string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if !ValidHost(host) {
		return nil, fmt.Errorf("bus: host %q cannot name subjects (letters, digits, - and _ only)", host)
	}
	opts := append(DialOptions("neutrino-agent-"+host, log), nats.UserInfo(agentUserPrefix+host, token),
		nats.CustomInboxPrefix(agentv1.InboxPrefix(host)), nats.RetryOnFailedConnect(true))
	opts = append(opts, extra...)
	return dial(ctx, url, opts)
}

// DialServer connects a Neutrino server to an external cluster.
func DialServer(ctx context.Context, url, token string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(DialOptions("neutrino-server", log), nats.UserInfo(ServerUser, token))
	return dial(ctx, url, append(opts, extra...))
}

func dial(ctx context.Context, u string, opts []nats.Option) (*nats.Conn, error) {
	if p, err := url.Parse(u); err != nil || (p.Scheme != "nats" && p.Scheme != "tls") {
		return nil, fmt.Errorf("bus: %q is not a nats:// URL", u)
	}
	nc, err := nats.Connect(u, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", u, err)
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}
