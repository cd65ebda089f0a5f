package bench_test

// BenchmarkLabDataPlanes compares the IPsec data planes on Debian's own
// kernel in the full-kernel lab (internal/vmlab), in one VM, so that only
// ratios matter (TCG emulation makes absolute times slow):
//
//   - the second side's connection POST until both ACTIVE, on the kernel's
//     XFRM and on charon's userspace ESP (kernel-libipsec);
//   - TCP throughput (iperf3, 3 s) between two VMs through the tunnel on
//     each data plane, and between two VMs on two networks of one router
//     (the plain routed path), as ratios to the plain path.
//
//	go test -run '^$' -bench LabDataPlanes -benchtime=5x ./test/bench/

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

func BenchmarkLabDataPlanes(b *testing.B) {
	if !vmlab.RunInLab(b) {
		return
	}
	iperf := testenv.RequireCommand(b, "iperf3", "iperf3")
	testenv.RequireCharon(b)
	var plain float64
	type result struct{ secondSide, mbps float64 }
	results := map[string]result{}
	defer func() {
		x, l := results[strongswan.DataPlaneXFRM], results[strongswan.DataPlaneLibipsec]
		if x.mbps == 0 || l.mbps == 0 || plain == 0 {
			return
		}
		fmt.Printf("\n%-10s %22s %14s %10s\n", "path", "second side p50 (ms)", "TCP (Mbit/s)", "x routed")
		fmt.Printf("%-10s %22s %14.0f %10.2f\n", "routed", "-", plain, 1.0)
		for _, k := range []string{strongswan.DataPlaneXFRM, strongswan.DataPlaneLibipsec} {
			fmt.Printf("%-10s %22.0f %14.1f %10.3f\n", k, results[k].secondSide, results[k].mbps, results[k].mbps/plain)
		}
		fmt.Printf("xfrm / libipsec: throughput %.1fx, second side %.2fx the time\n\n", x.mbps/l.mbps, x.secondSide/l.secondSide)
	}()
	b.Run("routed", func(b *testing.B) {
		e := newKernelEnv(b)
		run := e.startAgent()
		e.waitAgentAlive()
		ext := e.create("network", jsonObj{"name": "public", "router:external": true})["id"].(string)
		e.create("subnet", jsonObj{"network_id": ext, "ip_version": 4, "cidr": "172.24.0.0/16"})
		r := e.create("router", jsonObj{"name": "r", "external_gateway_info": jsonObj{"network_id": ext}})["id"].(string)
		e.pushUndo("delete router", func() error { return e.gone("DELETE", "/v2.0/routers/"+r, nil) })
		var vms [2]vmPort
		for i := range vms {
			n := e.create("network", jsonObj{"name": fmt.Sprint("n", i)})["id"].(string)
			sn := e.create("subnet", jsonObj{"network_id": n, "ip_version": 4, "cidr": fmt.Sprintf("10.%d.0.0/24", 1+i)})["id"].(string)
			iface := jsonObj{"subnet_id": sn}
			e.call("PUT", "/v2.0/routers/"+r+"/add_router_interface", iface, 200)
			e.pushUndo("remove interface", func() error { return e.gone("PUT", "/v2.0/routers/"+r+"/remove_router_interface", iface) })
			vms[i] = e.plugVM(n, fmt.Sprint("vm", i))
		}
		if _, err := run.l3.waitApplied([]string{r}, realiseBound); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			plain = throughput(b, iperf, vms[0], vms[1])
		}
		b.ReportMetric(plain, "mbit/s")
		b.ReportMetric(0, "ns/op")
	})
	for _, plane := range []string{strongswan.DataPlaneXFRM, strongswan.DataPlaneLibipsec} {
		b.Run(plane, func(b *testing.B) {
			e, run, ext, ike, ipsec := vpnBench(b, plane)
			sites := e.vpnSites(2, ext)
			if _, err := run.l3.waitApplied([]string{sites[0].router, sites[1].router}, realiseBound); err != nil {
				b.Fatal(err)
			}
			var took []time.Duration
			for b.Loop() {
				took = append(took, e.secondSide(run, sites[0], sites[1], ike, ipsec))
			}
			// Untimed: the tunnel's throughput.
			var conns []string
			for _, p := range [][2]vpnSite{{sites[0], sites[1]}, {sites[1], sites[0]}} {
				id, err := e.connect(p[0], p[1], ike, ipsec)
				if err != nil {
					b.Fatal(err)
				}
				e.pushUndo("delete connection "+id, func() error {
					return e.gone("DELETE", vpnPaths["ipsec_site_connection"]+"/"+id, nil)
				})
				conns = append(conns, id)
			}
			if err := e.waitConnsActive(conns, 20*time.Millisecond, vpnBound); err != nil {
				b.Fatal(err)
			}
			a, z := e.plugVM(sites[0].network, "moon"), e.plugVM(sites[1].network, "sun")
			mbps := throughput(b, iperf, a, z)
			p50 := nstest.Percentile(took, 0.50)
			b.Logf("%s: POST of the second side to both ACTIVE p50 %.0f ms over %d runs; tunnel %.0f Mbit/s, %.2f of the routed path's %.0f",
				plane, p50, len(took), mbps, mbps/plain, plain)
			results[plane] = result{p50, mbps}
			b.ReportMetric(p50, "second-side-p50-ms")
			b.ReportMetric(mbps, "mbit/s")
			if plain > 0 {
				b.ReportMetric(mbps/plain, "x-routed")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// throughput runs iperf3 for 3 s from VM a to VM z and returns what z
// received, in Mbit/s.
func throughput(b *testing.B, iperf string, a, z vmPort) float64 {
	b.Helper()
	for _, vp := range []vmPort{a, z} {
		waitVMDevice(b, vp.vm, vp.id, vp.ip)
	}
	srv := exec.Command(iperf, "-s", "-1", "-B", z.ip)
	if err := namespace.Do(z.vm.ns, srv.Start); err != nil {
		b.Fatalf("iperf3 server: %v", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	for deadline := time.Now().Add(probeBound); ; time.Sleep(200 * time.Millisecond) {
		var out []byte
		cli := exec.Command(iperf, "-c", z.ip, "-t", "3", "-J")
		err := namespace.Do(a.vm.ns, func() error {
			var e error
			out, e = cli.Output()
			return e
		})
		res.Error = ""
		jerr := json.Unmarshal(out, &res)
		switch {
		case jerr == nil && res.Error == "" && res.End.SumReceived.BitsPerSecond > 0:
			return res.End.SumReceived.BitsPerSecond / 1e6
		case strings.Contains(res.Error, "refused") && time.Now().Before(deadline):
			continue // the server is not listening yet
		default:
			b.Fatalf("iperf3 %s -> %s: %v %v %s\n%.500s", a.ip, z.ip, err, jerr, res.Error, out)
		}
	}
}
