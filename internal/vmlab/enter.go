package vmlab

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

// Require returns the lab, or ends the test through testenv.Missing (a
// failure under CI) with what is missing.
func Require(tb testing.TB) *Lab {
	tb.Helper()
	testenv.RequireRoot(tb)
	l, err := Find()
	if err != nil {
		testenv.Missing(tb, "the full-kernel lab: %v", err)
	}
	return l
}

// Enter runs the calling test inside the lab. Inside the lab it returns
// true: the test goes on, on the lab's kernel. Outside it re-runs this
// test binary in a VM with -test.run naming exactly this test, streams the
// inner output into the test's log, fails the test if the inner run
// failed or ran no test, and returns false: the test returns.
//
//	func TestSomethingOnAFullKernel(t *testing.T) {
//		if !vmlab.Enter(t) {
//			return
//		}
//		... // runs in the VM
//	}
func Enter(t *testing.T) bool {
	t.Helper()
	if Inside() {
		return true
	}
	l := Require(t)
	timeout := 15 * time.Minute
	if d, ok := t.Deadline(); ok {
		// Leave this binary time to report before go test's -timeout.
		timeout = time.Until(d) - 10*time.Second
	}
	if timeout < 30*time.Second {
		t.Fatalf("%s left for the lab run; it needs at least 30 s (go test -timeout)", timeout.Round(time.Second))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{os.Args[0], "-test.run", "^" + runPattern(t.Name()) + "$", "-test.v", "-test.count=1",
		"-test.timeout", innerTimeout(timeout).String()}
	if f := flag.Lookup("test.short"); f != nil && f.Value.String() == "true" {
		args = append(args, "-test.short")
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		args = append(args, "-test.bench", f.Value.String())
		if bt := flag.Lookup("test.benchtime"); bt != nil {
			args = append(args, "-test.benchtime", bt.Value.String())
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	lw := &lineLog{t: t}
	start := time.Now()
	code, err := l.Run(ctx, Run{Args: args, Env: passEnv(), Dir: wd, Stdout: lw})
	lw.flush()
	if err != nil {
		t.Fatalf("in the lab (kernel %s): %v", l.KVer, err)
	}
	out := lw.String()
	t.Logf("lab run (kernel %s) ended with status %d after %s", l.KVer, code, time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("%s failed in the lab (status %d); its output is above", t.Name(), code)
	}
	skipped, err := Result(out, t.Name())
	if err != nil {
		t.Fatalf("in the lab: %v; its output is above", err)
	}
	if skipped {
		// Inside, testenv.Missing skips only where it would skip here;
		// through Missing a skip that got past it still fails under CI.
		testenv.Missing(t, "%s skipped in the lab; the reason is above", t.Name())
	}
	return false
}

// Result reads the verbose output (-test.v) of a test binary run with
// -test.run naming exactly the test name: whether it skipped, or an error
// when it did not run (no test matched, or no result line for it) or
// failed.
func Result(out, name string) (skipped bool, err error) {
	switch {
	case strings.Contains(out, "testing: warning: no tests to run"):
		return false, fmt.Errorf("no test ran: -test.run matched nothing for %s", name)
	case strings.Contains(out, "--- FAIL: "+name+" ("):
		return false, fmt.Errorf("%s failed", name)
	case strings.Contains(out, "--- PASS: "+name+" ("):
		return false, nil
	case strings.Contains(out, "--- SKIP: "+name+" ("):
		return true, nil
	}
	return false, fmt.Errorf("no result line for %s: it did not run or did not finish", name)
}

// innerTimeout is the -test.timeout of a run in the lab given the run's
// deadline: shorter by the boot and power-off, so that a hung test panics
// with its goroutines' stacks before the VM is killed.
func innerTimeout(vm time.Duration) time.Duration {
	d := vm - 20*time.Second
	if d < vm/2 {
		d = vm / 2
	}
	return d.Round(time.Second)
}

// RunInLab is Enter for a benchmark: outside the lab it re-runs the
// benchmark inside with -test.bench naming exactly it, copies the inner
// output to standard output (the benchmark lines and logs, which a
// benchmark's own log would truncate), fails b if the inner run failed,
// and returns false after looping b once, so that the benchmark function
// is not called again.
func RunInLab(b *testing.B) bool {
	b.Helper()
	if Inside() {
		return true
	}
	l := Require(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := []string{os.Args[0], "-test.run", "^$", "-test.bench", "^" + runPattern(b.Name()) + "$", "-test.v", "-test.count=1"}
	if bt := flag.Lookup("test.benchtime"); bt != nil {
		args = append(args, "-test.benchtime", bt.Value.String())
	}
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	code, err := l.Run(ctx, Run{Args: args, Env: passEnv(), Dir: wd, Stdout: &prefixed{w: os.Stdout, prefix: "lab| "}})
	if err != nil || code != 0 {
		b.Fatalf("%s in the lab (kernel %s): status %d, %v; its output is above", b.Name(), l.KVer, code, err)
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	return false
}

// prefixed writes each line with a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixed) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.mid {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i+1]
		}
		if _, err := p.w.Write(chunk); err != nil {
			return 0, err
		}
		p.mid = i < 0
		b = b[len(chunk):]
	}
	return n, nil
}

// runPattern turns a test name into -test.run's slash-separated pattern
// that matches only it.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, "$/^")
}

// passEnv is what of this environment the command in the lab gets: CI,
// Neutrino's variables (requirements, services) and PATH, with the sbin
// directories added when missing (modprobe, ip).
func passEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH":
			out = append(out, "PATH="+withSystemPath(v))
		case k == "CI" || (strings.HasPrefix(k, "NEUTRINO_") && k != EnvGuest) || k == "GOTRACEBACK":
			out = append(out, kv)
		}
	}
	return out
}

// withSystemPath is path with the usual system directories appended when
// it lacks them.
func withSystemPath(path string) string {
	have := map[string]bool{}
	dirs := filepath.SplitList(path)
	for _, d := range dirs {
		have[d] = true
	}
	for _, d := range filepath.SplitList(systemPath) {
		if !have[d] {
			dirs = append(dirs, d)
		}
	}
	return strings.Join(dirs, string(filepath.ListSeparator))
}

// lineLog writes each line it is given to a test's log, and keeps all.
type lineLog struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
	all strings.Builder
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.all.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep
			break
		}
		w.t.Logf("lab| %s", strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (w *lineLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.t.Logf("lab| %s", w.buf.String())
		w.buf.Reset()
	}
}

func (w *lineLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
