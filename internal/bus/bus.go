// Package bus connects the server and the agents over NATS: an embedded
// NATS server (unless an external cluster is configured), per-host agent
// credentials, and connections whose permissions let an agent use only
// its own host's subjects.
package bus

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
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

// AgentToken is the credential of the agent on host: an HMAC of the host
// name under the deployment's secret, so a token is good for one host only.
func AgentToken(secret []byte, host string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(agentUserPrefix + host))
	return hex.EncodeToString(m.Sum(nil))
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

// authenticator checks servers and agents against the secret and maps
// each agent to its host's permissions.
type authenticator struct {
	secret []byte
	log    *slog.Logger
}

func (a authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	user, pass := o.Username, o.Password
	if user == ServerUser {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(ServerToken(a.secret))) == 1 {
			c.RegisterUser(&server.User{Username: user})
			return true
		}
	} else if host, ok := strings.CutPrefix(user, agentUserPrefix); ok && ValidHost(host) {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(AgentToken(a.secret, host))) == 1 {
			c.RegisterUser(&server.User{Username: user, Permissions: AgentPermissions(host)})
			return true
		}
	}
	a.log.Warn("bus: rejected connection", "user", user, "remote", fmt.Sprint(c.RemoteAddress()))
	return false
}

// EmbeddedOptions configure the embedded NATS server.
type EmbeddedOptions struct {
	// Listen is host:port for agents; empty serves in-process clients only.
	Listen string
	Secret []byte
	Logger *slog.Logger
}

// Embedded is a NATS server inside the Neutrino server process.
type Embedded struct {
	ns  *server.Server
	url string
}

// StartEmbedded starts a NATS server and waits until it accepts clients.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("bus: empty secret")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	so := &server.Options{
		ServerName: "neutrino", NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
		CustomClientAuthentication: authenticator{secret: opts.Secret, log: opts.Logger},
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
	e := &Embedded{ns: ns}
	if !so.DontListen {
		e.url = ns.ClientURL()
	}
	return e, nil
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

// Shutdown stops the server.
func (e *Embedded) Shutdown() {
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
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
func DialServer(ctx context.Context, url, token string, log *slog.Logger) (*nats.Conn, error) {
	return dial(ctx, url, append(DialOptions("neutrino-server", log), nats.UserInfo(ServerUser, token)))
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
