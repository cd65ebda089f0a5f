package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// skipCall is a test skipping itself.
	skipCall = regexp.MustCompile(`\.Skip(f|Now)?\(`)
	// handRolled is a test deciding by itself whether it may run: a root
	// check or a look at CI.
	handRolled = regexp.MustCompile(`os\.Geteuid\(|Getenv\("CI"\)|NEUTRINO_REQUIRE_CLI`)
)

// allowed lists legitimate exceptions as "path/from/root.go:trimmed line",
// each with a comment saying why. None so far.
var allowed = map[string]bool{}

// TestNoQuietSkips keeps the rule from eroding: outside this package no
// Go file skips a test by itself, and no test or test helper checks root
// or CI by itself, so a missing requirement always goes through Missing (a
// failure under CI). A skip guarded by testing.Short() on the same or the
// previous line is allowed.
func TestNoQuietSkips(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	self := filepath.Join(root, "internal", "testenv")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == self || strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		src := string(data)
		// Tests and test helper packages; the programs may look at
		// their own euid.
		forTests := strings.HasSuffix(path, "_test.go") || strings.Contains(src, "\t\"testing\"\n") ||
			strings.Contains(src, "import \"testing\"\n")
		lines := strings.Split(src, "\n")
		for i, l := range lines {
			site := rel + ":" + strings.TrimSpace(l)
			if allowed[site] {
				continue
			}
			if skipCall.MatchString(l) &&
				!strings.Contains(l, "testing.Short()") && (i == 0 || !strings.Contains(lines[i-1], "testing.Short()")) {
				t.Errorf("%s:%d skips by itself; use testenv (Missing, Require...): %s", rel, i+1, strings.TrimSpace(l))
			}
			if forTests && handRolled.MatchString(l) {
				t.Errorf("%s:%d checks root or CI by itself; use testenv (RequireRoot, RequireKernel, InCI): %s",
					rel, i+1, strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d Go files under %s", checked, root)
	}
}
