package bench_test

// The VPN benchmarks run the same real server and agent as the agent
// benchmarks, with the strongSwan device driver (charon per router, the
// data plane the host supports), driven through the API only.
//
//	go test -run '^$' -bench VPNSecondSide -benchtime=20x ./test/bench/
//	go test -run '^$' -bench VPNAgentRestart -benchtime=1x ./test/bench/
//
// BenchmarkVPNSecondSide: two routers on one external network, a VPN
// service on each and the first side's connection in place; each
// iteration times the POST of the second side's connection until GET
// shows both connections ACTIVE (polled every 5 ms), then deletes both
// connections, untimed, and waits until both charons are gone. It reports
// p50-ms and p99-ms.
//
// BenchmarkVPNAgentRestart: vpnRouters routers in pairs, each pair with a
// connection each way, all ACTIVE; it reports rss-mib-per-router (charon's
// resident memory per router with VPN, from /proc), then restarts the
// agent and reports resync-s (agent start until every router is applied
// again and the driver sees every service ACTIVE) and dropped (connections
// whose IKE_SA ids changed or that any status report showed not ACTIVE).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

const (
	vpnRouters = 50 // routers of BenchmarkVPNAgentRestart (in pairs)
	vpnBound   = 30 * time.Second
)

var vpnPaths = map[string]string{
	"ikepolicy": "/v2.0/vpn/ikepolicies", "ipsecpolicy": "/v2.0/vpn/ipsecpolicies",
	"vpnservice": "/v2.0/vpn/vpnservices", "ipsec_site_connection": "/v2.0/vpn/ipsec-site-connections",
}

// vpnCreate POSTs a VPN resource; its deletion is left to the caller.
func (e *kernelEnv) vpnCreate(kind string, attrs jsonObj) (jsonObj, error) {
	out, err := e.try("POST", vpnPaths[kind], jsonObj{kind: attrs}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	obj, _ := out[kind].(map[string]any)
	return obj, nil
}

// vpnSite is a router with a gateway and one tenant subnet.
type vpnSite struct {
	router, network, subnet, cidr, svc, ext string
}

// vpnSites creates n routers with a subnet each (10.200+i/256.i%256.0/24)
// and a VPN service on each, and registers their removal.
func (e *kernelEnv) vpnSites(n int, ext string) []vpnSite {
	sites := make([]vpnSite, n)
	err := fanOut(createClients, n, func(i int) error {
		s := &sites[i]
		s.cidr = fmt.Sprintf("10.%d.%d.0/24", 200+i/256, i%256)
		nw, err := e.tryCreate("network", jsonObj{"name": fmt.Sprintf("v%d", i)})
		if err != nil {
			return err
		}
		sn, err := e.tryCreate("subnet", jsonObj{"network_id": nw["id"], "ip_version": 4, "cidr": s.cidr})
		if err != nil {
			return err
		}
		r, err := e.tryCreate("router", jsonObj{"name": fmt.Sprintf("vr%d", i), "external_gateway_info": jsonObj{"network_id": ext}})
		if err != nil {
			return err
		}
		s.router, s.network, s.subnet = r["id"].(string), nw["id"].(string), sn["id"].(string)
		if _, err := e.try("PUT", "/v2.0/routers/"+s.router+"/add_router_interface", jsonObj{"subnet_id": s.subnet}, http.StatusOK); err != nil {
			return err
		}
		v, err := e.vpnCreate("vpnservice", jsonObj{"router_id": s.router, "subnet_id": s.subnet})
		if err != nil {
			return err
		}
		s.svc, s.ext = v["id"].(string), v["external_v4_ip"].(string)
		return nil
	})
	e.pushUndo("delete the VPN sites", func() error {
		return fanOut(createClients, n, func(i int) error {
			s := sites[i]
			if s.router == "" {
				return nil
			}
			var errs []error
			if s.svc != "" {
				errs = append(errs, e.gone("DELETE", vpnPaths["vpnservice"]+"/"+s.svc, nil))
			}
			return errors.Join(append(errs,
				e.gone("PUT", "/v2.0/routers/"+s.router+"/remove_router_interface", jsonObj{"subnet_id": s.subnet}),
				e.gone("DELETE", "/v2.0/routers/"+s.router, nil))...)
		})
	})
	if err != nil {
		e.b.Fatal(err)
	}
	return sites
}

// vpnPolicies creates an IKE and an IPsec policy (deleted last).
func (e *kernelEnv) vpnPolicies() (ike, ipsec string) {
	i, err := e.vpnCreate("ikepolicy", jsonObj{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})
	if err != nil {
		e.b.Fatal(err)
	}
	p, err := e.vpnCreate("ipsecpolicy", jsonObj{"name": "esp", "auth_algorithm": "sha256"})
	if err != nil {
		e.b.Fatal(err)
	}
	ike, ipsec = i["id"].(string), p["id"].(string)
	e.pushUndo("delete the VPN policies", func() error {
		return errors.Join(e.gone("DELETE", vpnPaths["ikepolicy"]+"/"+ike, nil), e.gone("DELETE", vpnPaths["ipsecpolicy"]+"/"+ipsec, nil))
	})
	return ike, ipsec
}

// connect creates the connection from a to b.
func (e *kernelEnv) connect(a, b vpnSite, ike, ipsec string) (string, error) {
	c, err := e.vpnCreate("ipsec_site_connection", jsonObj{"vpnservice_id": a.svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
		"peer_address": b.ext, "peer_id": b.ext, "psk": "bench-psk", "peer_cidrs": []any{b.cidr}})
	if err != nil {
		return "", err
	}
	return c["id"].(string), nil
}

func (e *kernelEnv) connStatus(id string) string {
	out, err := e.try("GET", vpnPaths["ipsec_site_connection"]+"/"+id, nil, http.StatusOK)
	if err != nil {
		return ""
	}
	c, _ := out["ipsec_site_connection"].(map[string]any)
	s, _ := c["status"].(string)
	return s
}

// waitActive polls GET until every connection is ACTIVE.
func (e *kernelEnv) waitConnsActive(ids []string, poll, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		pending := 0
		for _, id := range ids {
			if e.connStatus(id) != "ACTIVE" {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d connections not ACTIVE after %s", pending, len(ids), bound)
		}
		time.Sleep(poll)
	}
}

// vpnBench starts a kernel environment with an external network, an
// agent and a pair of VPN policies.
func vpnBench(b *testing.B, plane string) (e *kernelEnv, run *agentRun, ext, ike, ipsec string) {
	testenv.RequireCharon(b)
	e = newKernelEnv(b)
	e.dataPlane = plane
	ext = e.create("network", jsonObj{"name": "public", "router:external": true})["id"].(string)
	e.create("subnet", jsonObj{"network_id": ext, "ip_version": 4, "cidr": "172.24.0.0/16"})
	run = e.startAgent()
	e.waitAgentAlive()
	ike, ipsec = e.vpnPolicies()
	return e, run, ext, ike, ipsec
}

// secondSide times one POST of the second side's connection until GET
// shows both ACTIVE (the first side realised before), then deletes both,
// untimed, and waits until both charons are gone.
func (e *kernelEnv) secondSide(run *agentRun, a, z vpnSite, ike, ipsec string) time.Duration {
	b := e.b
	first, err := e.connect(a, z, ike, ipsec)
	if err != nil {
		b.Fatal(err)
	}
	// The first side is realised (its charon runs, its connection is
	// reported) before the clock starts.
	for deadline := time.Now().Add(vpnBound); e.connStatus(first) == "PENDING_CREATE"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("first connection never reported")
		}
	}
	start := time.Now()
	second, err := e.connect(z, a, ike, ipsec)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.waitConnsActive([]string{first, second}, 5*time.Millisecond, vpnBound); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	for _, id := range []string{first, second} {
		if err := e.gone("DELETE", vpnPaths["ipsec_site_connection"]+"/"+id, nil); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(vpnBound); run.vpn.Pid(a.router) != 0 || run.vpn.Pid(z.router) != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("charons still run after the connections were deleted")
		}
	}
	return took
}

func BenchmarkVPNSecondSide(b *testing.B) {
	e, run, ext, ike, ipsec := vpnBench(b, "")
	sites := e.vpnSites(2, ext)
	if _, err := run.l3.waitApplied([]string{sites[0].router, sites[1].router}, realiseBound); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for b.Loop() {
		took = append(took, e.secondSide(run, sites[0], sites[1], ike, ipsec))
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	b.Logf("POST of the second connection -> both ACTIVE in GET over %d runs: p50 %s, p99 %s, min %s, max %s",
		len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// charonRSS sums the resident memory (KiB) of the charons under dir.
func charonRSS(dir string) (kib int64, n int) {
	pids, _ := filepath.Glob(filepath.Join(dir, "*", strongswan.PidFile))
	for _, p := range pids {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			continue
		}
		if v := procKiB(pid, "VmRSS"); v > 0 {
			kib += v
			n++
		}
	}
	return kib, n
}

func BenchmarkVPNAgentRestart(b *testing.B) {
	e, run, ext, ike, ipsec := vpnBench(b, "")
	t0 := time.Now()
	sites := e.vpnSites(vpnRouters, ext)
	conns := make([]string, vpnRouters)
	err := fanOut(createClients, vpnRouters, func(i int) error {
		var err error
		conns[i], err = e.connect(sites[i], sites[i^1], ike, ipsec)
		return err
	})
	e.pushUndo("delete the connections", func() error {
		return fanOut(createClients, vpnRouters, func(i int) error {
			if conns[i] == "" {
				return nil
			}
			return e.gone("DELETE", vpnPaths["ipsec_site_connection"]+"/"+conns[i], nil)
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.waitConnsActive(conns, 100*time.Millisecond, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	routers := make([]string, vpnRouters)
	for i, s := range sites {
		routers[i] = s.router
	}
	b.Logf("%d routers with VPN, %d connections ACTIVE %s after the first POST", vpnRouters, vpnRouters, time.Since(t0).Round(time.Millisecond))
	kib, n := charonRSS(filepath.Join(e.state, "ipsec"))
	if n != vpnRouters {
		b.Errorf("%d charons running, want %d", n, vpnRouters)
	}
	perRouter := float64(kib) / 1024 / float64(max(n, 1))

	snapshot := func(drv *strongswan.Driver) map[string]string {
		out := map[string]string{}
		for _, r := range routers {
			sas, _ := drv.IKESAs(context.Background(), r)
			out[r] = fmt.Sprint(sas)
		}
		return out
	}
	before := snapshot(run.vpn)

	var resync time.Duration
	var dropped int
	restarts := 0
	for b.Loop() {
		// Watch the API for any connection that leaves ACTIVE meanwhile.
		stop := make(chan struct{})
		var mu sync.Mutex
		notActive := map[string]bool{}
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range conns {
					if s := e.connStatus(id); s != "ACTIVE" && s != "" {
						mu.Lock()
						notActive[id] = true
						mu.Unlock()
					}
				}
			}
		}()
		e.stopAgent()
		run = e.startAgent()
		last, err := run.l3.waitApplied(routers, realiseBound)
		if err != nil {
			b.Fatalf("restart: %v", err)
		}
		for deadline := time.Now().Add(vpnBound); ; time.Sleep(5 * time.Millisecond) {
			all := true
			for i, r := range routers {
				if run.vpn.Status(r)[sites[i].svc].Status != "ACTIVE" {
					all = false
					break
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("restarted agent does not see every VPN service ACTIVE")
			}
		}
		_ = last // every router applied; the VPN is seen ACTIVE after that
		took := time.Since(run.started)
		resync += took
		restarts++
		time.Sleep(time.Second) // reports of the new agent land
		close(stop)
		<-watched
		after := snapshot(run.vpn)
		changed := 0
		for r, v := range before {
			if after[r] != v {
				changed++
			}
		}
		dropped += changed + len(notActive)
		b.Logf("restart %d: %d routers with VPN resynced in %s; %d routers' IKE_SAs changed, %d connections seen not ACTIVE",
			restarts, vpnRouters, took.Round(time.Millisecond), changed, len(notActive))
	}
	b.ReportMetric(resync.Seconds()/float64(max(restarts, 1)), "resync-s")
	b.ReportMetric(float64(dropped), "dropped")
	b.ReportMetric(perRouter, "rss-mib-per-router")
	b.ReportMetric(0, "ns/op")
	if dropped > 0 {
		b.Errorf("the agent restart dropped %d tunnels, want 0", dropped)
	}
}
