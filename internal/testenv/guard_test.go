package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// skipCall is a test skipping itself.
var skipCall = regexp.MustCompile(`\.Skip(f|Now)?\(`)

// TestNoQuietSkips keeps the rule from eroding: outside this package no
// Go file skips a test by itself, so a missing requirement always goes
// through Missing (a failure under CI). A skip guarded by testing.Short()
// on the same or the previous line is allowed.
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
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if !skipCall.MatchString(l) {
				continue
			}
			if strings.Contains(l, "testing.Short()") || (i > 0 && strings.Contains(lines[i-1], "testing.Short()")) {
				continue
			}
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s:%d skips by itself; use testenv (Missing, Require...): %s", rel, i+1, strings.TrimSpace(l))
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
