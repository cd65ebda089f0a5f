// Package config loads Neutrino's configuration from defaults, one file of
// "key = value" lines, NEUTRINO_<KEY> environment variables and flags, in
// that order of precedence (flags win). One table of options drives all
// four, so they never disagree.
package config

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/internal/segment"
)

// Config is the server's configuration.
type Config struct {
	Listen           string
	DataDir          string
	Database         string
	Auth             string
	KeystoneURL      string
	KeystoneCacheTTL time.Duration
	KeystoneInFlight int
	PublicURL        string
	APIReadTimeout   time.Duration
	APIIdleTimeout   time.Duration
	APIMaxHeader     int
	LogLevel         string
	LogFormat        string
	PhysnetMTU       int
	Segments         segment.Config
	// PhysicalInterfaceMappings: neutrino up's local agent's uplinks.
	PhysicalInterfaceMappings map[string]string
	MACPrefix                 string
	ServiceProviders          []string
	Bus                       string
	BusListen                 string
	BusSecretFile             string
	BusTLSCert                string
	BusTLSKey                 string
	BusTLSCA                  string
	AgentDownTime             time.Duration
	L3AgentFailover           bool
	DHCPAgentsPerNetwork      int
	DHCPLeaseDuration         int
	MaxAllowedAddressPairs    int
	Agent                     string
	IPsecDataPlane            string
	AgentMetrics              string
}

// option is one configuration key.
type option struct {
	key  string
	def  string
	help string
	set  func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func positiveDuration(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("not a positive duration: %q", v)
		}
		*dst(c) = d
		return nil
	}
}

func oneOf(dst func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("must be one of %s, not %q", strings.Join(allowed, ", "), v)
		}
		*dst(c) = v
		return nil
	}
}

var options = []option{
	{"listen", "127.0.0.1:9696", "Address and port the Networking API listens on.",
		str(func(c *Config) *string { return &c.Listen })},
	{"data_dir", defaultDataDir(), "Directory for the embedded database and state.",
		str(func(c *Config) *string { return &c.DataDir })},
	{"database", "", "Database URL: empty for SQLite in data_dir, sqlite:///path/file.db, or postgres://user:pass@host/db.",
		str(func(c *Config) *string { return &c.Database })},
	{"auth", "noauth", "Authentication: noauth (identity from X-Project-Id/X-Roles headers) or keystone.",
		oneOf(func(c *Config) *string { return &c.Auth }, "noauth", "keystone")},
	{"keystone_url", "", "Keystone v3 endpoint used to validate X-Auth-Token (e.g. http://127.0.0.1:5000/v3).",
		str(func(c *Config) *string { return &c.KeystoneURL })},
	{"keystone_cache_ttl", "5m", "How long a validated token is cached (never past its expiry).",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("not a duration: %q", v)
			}
			c.KeystoneCacheTTL = d
			return nil
		}},
	{"keystone_max_concurrency", "8", "Most token validations in flight towards Keystone at once; requests with the same token share one.",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1024 {
				return fmt.Errorf("not a number between 1 and 1024: %q", v)
			}
			c.KeystoneInFlight = n
			return nil
		}},
	{"api_read_timeout", "60s", "Longest time to read one API request, headers and body; a slower client is disconnected.",
		positiveDuration(func(c *Config) *time.Duration { return &c.APIReadTimeout })},
	{"api_idle_timeout", "120s", "How long an idle keep-alive API connection stays open.",
		positiveDuration(func(c *Config) *time.Duration { return &c.APIIdleTimeout })},
	{"api_max_header_bytes", "65536", "Largest request header block the API reads; larger ones get 431 HTTPRequestHeaderFieldsTooLarge.",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 4096 || n > 1<<20 {
				return fmt.Errorf("not a size between 4096 and 1048576 bytes: %q", v)
			}
			c.APIMaxHeader = n
			return nil
		}},
	{"public_url", "", "Base URL used in links (versions, pagination); empty derives it from each request.",
		str(func(c *Config) *string { return &c.PublicURL })},
	{"log_level", "info", "Log level: debug, info, warn or error.",
		oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
	{"log_format", "text", "Log format: text or json.",
		oneOf(func(c *Config) *string { return &c.LogFormat }, "text", "json")},
	{"physnet_mtu", "1500", "MTU of the physical network; tenant (VXLAN) networks get 50 bytes less.",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1280 || n > 65535 {
				return fmt.Errorf("not an MTU between 1280 and 65535: %q", v)
			}
			c.PhysnetMTU = n
			return nil
		}},
	{"flat_networks", "*", "Physical networks flat provider networks may use, comma-separated; * allows any, empty none.",
		func(c *Config, v string) (err error) {
			c.Segments.Flat, err = segment.ParseFlat(v)
			return err
		}},
	{"network_vlan_ranges", "", "Physical networks for VLAN provider networks: physnet[:min:max],...; tenant VLAN networks are allocated from the ranges, a physnet without one takes admin-chosen VLANs only.",
		func(c *Config, v string) (err error) {
			c.Segments.VLAN, err = segment.ParseVLANRanges(v)
			return err
		}},
	{"vni_ranges", "1:16777215", "VXLAN network identifiers tenant networks are allocated from: min:max,... (admins may choose any VNI).",
		func(c *Config, v string) (err error) {
			c.Segments.VNI, err = segment.ParseVNIRanges(v)
			return err
		}},
	{"tenant_network_types", "vxlan", "Network types for networks created without provider attributes, in order of preference: vxlan, vlan, local.",
		func(c *Config, v string) (err error) {
			c.Segments.TenantTypes, err = segment.ParseTenantTypes(v)
			return err
		}},
	{"physical_interface_mappings", "", "neutrino up's local agent: physnet:interface,... the host interfaces that carry flat and VLAN networks. `neutrino agent` takes --physical-interface-mappings.",
		func(c *Config, v string) (err error) {
			c.PhysicalInterfaceMappings, err = segment.ParseMappings(v)
			return err
		}},
	// libreswan is not in the default while no agent runs it: its
	// services could only ever be ERROR.
	{"service_provider", "VPN:strongswan:strongswan:default",
		"VPN service providers, comma-separated, each VPN:<name>:<driver>[:default]; drivers: strongswan, libreswan.",
		func(c *Config, v string) error {
			c.ServiceProviders = nil
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					c.ServiceProviders = append(c.ServiceProviders, e)
				}
			}
			if len(c.ServiceProviders) == 0 {
				return fmt.Errorf("at least one provider is needed")
			}
			return nil
		}},
	{"bus", "", "Message bus between servers and agents: empty runs NATS inside the server; nats://host:4222 uses an external cluster.",
		func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "nats://") && !strings.HasPrefix(v, "tls://") {
				return fmt.Errorf("not a nats:// URL: %q", v)
			}
			c.Bus = v
			return nil
		}},
	{"bus_listen", "127.0.0.1:4222", "Where the embedded NATS server listens for agents (empty: no agents from other processes).",
		str(func(c *Config) *string { return &c.BusListen })},
	{"bus_secret_file", "", "File with the secret that signs agent and server bus credentials; empty: data_dir/bus.secret, created on first start.",
		str(func(c *Config) *string { return &c.BusSecretFile })},
	{"bus_tls_cert", "", "Embedded NATS: certificate (PEM, may hold the chain) agents verify; with bus_tls_key, every agent must use TLS. Empty: no TLS, so off loopback tokens and PSKs cross the network in clear.",
		str(func(c *Config) *string { return &c.BusTLSCert })},
	{"bus_tls_key", "", "Embedded NATS: private key (PEM) of bus_tls_cert.",
		str(func(c *Config) *string { return &c.BusTLSKey })},
	{"bus_tls_ca", "", "CA certificates (PEM) that verify the bus's certificate when dialing an external NATS (bus = nats://...) from the server or neutrino up's local agent; empty: the system's CAs. `neutrino agent` takes --bus-tls-ca.",
		str(func(c *Config) *string { return &c.BusTLSCA })},
	{"agent_down_time", "30s", "How long an agent may miss heartbeats before it is shown dead, gets no new routers and (with allow_automatic_l3agent_failover) loses its routers to alive agents.",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("not a positive duration: %q", v)
			}
			c.AgentDownTime = d
			return nil
		}},
	{"allow_automatic_l3agent_failover", "true", "Move the routers of an L3 agent dead for agent_down_time to alive L3 agents (checked every agent_down_time/3 by every server).",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not a boolean: %q", v)
			}
			c.L3AgentFailover = b
			return nil
		}},
	{"dhcp_agents_per_network", "1", "How many DHCP agents serve each network with a DHCP-enabled subnet (the least loaded alive ones).",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("not a positive integer: %q", v)
			}
			c.DHCPAgentsPerNetwork = n
			return nil
		}},
	{"dhcp_lease_duration", "86400", "DHCP lease time in seconds handed out by the agents' DHCP servers.",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 120 {
				return fmt.Errorf("not an integer of at least 120: %q", v)
			}
			c.DHCPLeaseDuration = n
			return nil
		}},
	{"max_allowed_address_pair", "10", "Most allowed address pairs a port may have (the reference's option; a CNI macvlan or ipvlan VM needs one per container).",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 4096 {
				return fmt.Errorf("not an integer from 0 to 4096: %q", v)
			}
			c.MaxAllowedAddressPairs = n
			return nil
		}},
	{"agent", "auto", "neutrino up only: run a local agent (auto: when running as root; true; false).",
		oneOf(func(c *Config) *string { return &c.Agent }, "auto", "true", "false")},
	{"ipsec_dataplane", "auto", "neutrino up's local agent: IPsec data plane (auto: kernel XFRM when the kernel has ESP, else libipsec; xfrm; libipsec: userspace ESP over TUN). `neutrino agent` takes --ipsec-dataplane.",
		oneOf(func(c *Config) *string { return &c.IPsecDataPlane }, "auto", "xfrm", "libipsec")},
	{"agent_metrics_listen", "", "neutrino up's local agent: address of its Prometheus /metrics (tunnel states, bytes, rekeys), e.g. 127.0.0.1:9697; empty: off. `neutrino agent` takes --metrics-listen.",
		str(func(c *Config) *string { return &c.AgentMetrics })},
	{"mac_prefix", "fa:16:3e", "First three bytes of generated port MAC addresses.",
		func(c *Config, v string) error {
			parts := strings.Split(v, ":")
			if len(parts) != 3 {
				return fmt.Errorf("not a three-byte MAC prefix: %q", v)
			}
			for _, p := range parts {
				if _, err := strconv.ParseUint(p, 16, 8); err != nil || len(p) != 2 {
					return fmt.Errorf("not a three-byte MAC prefix: %q", v)
				}
			}
			c.MACPrefix = strings.ToLower(v)
			return nil
		}},
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/neutrino"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "neutrino")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "neutrino")
	}
	return "neutrino-data"
}

// EnvName is the environment variable of a key.
func EnvName(key string) string { return "NEUTRINO_" + strings.ToUpper(key) }

// Load builds the configuration from defaults, the file named by --config
// or NEUTRINO_CONFIG (if any), the environment and args (flags).
func Load(name string, args []string, env func(string) string) (*Config, error) {
	c := &Config{}
	for _, o := range options {
		if err := o.set(c, o.def); err != nil {
			panic("bad default for " + o.key + ": " + err.Error())
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", env("NEUTRINO_CONFIG"), "configuration file (key = value lines)")
	flagVals := map[string]*string{}
	for _, o := range options {
		flagVals[o.key] = fs.String(strings.ReplaceAll(o.key, "_", "-"), "", o.help+" (default "+strconv.Quote(o.def)+")")
	}
	if err := fs.Parse(args); err != nil {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return nil, fmt.Errorf("%w\nflags:\n%s", err, b.String())
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *configFile != "" {
		f, err := os.Open(*configFile)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		defer f.Close()
		if err := c.parseFile(f, *configFile); err != nil {
			return nil, err
		}
	}
	for _, o := range options {
		if v := env(EnvName(o.key)); v != "" {
			if err := o.set(c, v); err != nil {
				return nil, fmt.Errorf("%s: %w", EnvName(o.key), err)
			}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range options {
		if name := strings.ReplaceAll(o.key, "_", "-"); set[name] {
			if err := o.set(c, *flagVals[o.key]); err != nil {
				return nil, fmt.Errorf("--%s: %w", name, err)
			}
		}
	}
	return c, c.check()
}

func (c *Config) check() error {
	if c.Auth == "keystone" && c.KeystoneURL == "" {
		return fmt.Errorf("auth = keystone needs keystone_url")
	}
	if (c.BusTLSCert == "") != (c.BusTLSKey == "") {
		return fmt.Errorf("bus_tls_cert and bus_tls_key go together")
	}
	if c.BusTLSCert != "" && c.Bus != "" {
		return fmt.Errorf("bus_tls_cert serves the embedded NATS; with bus = %s configure TLS in that cluster (and bus_tls_ca here)", c.Bus)
	}
	return nil
}

// parseFile reads "key = value" lines; '#' starts a comment; values may be
// double-quoted.
func (c *Config) parseFile(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: expected key = value", name, n)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if uq, err := strconv.Unquote(val); err == nil && strings.HasPrefix(val, `"`) {
			val = uq
		}
		i := slices.IndexFunc(options, func(o option) bool { return o.key == key })
		if i < 0 {
			return fmt.Errorf("%s:%d: unknown key %q", name, n, key)
		}
		if err := options[i].set(c, val); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", name, n, key, err)
		}
	}
	return sc.Err()
}

// Example writes a commented configuration file with every option at its
// default.
func Example(w io.Writer) {
	fmt.Fprintln(w, "# Neutrino configuration. Every key may also be set as NEUTRINO_<KEY> in the")
	fmt.Fprintln(w, "# environment or as --<key-with-dashes> on the command line (flags win).")
	for _, o := range options {
		fmt.Fprintf(w, "\n# %s\n# env: %s, flag: --%s\n%s = %s\n", o.help, EnvName(o.key), strings.ReplaceAll(o.key, "_", "-"), o.key, strconv.Quote(o.def))
	}
}

// DatabaseURL is the database to open: the configured one or the SQLite
// file in the data directory.
func (c *Config) DatabaseURL() string {
	if c.Database != "" {
		return c.Database
	}
	return "sqlite://" + filepath.Join(c.DataDir, "neutrino.db")
}

// SecretFile is the bus secret's file.
func (c *Config) SecretFile() string {
	if c.BusSecretFile != "" {
		return c.BusSecretFile
	}
	return filepath.Join(c.DataDir, "bus.secret")
}
