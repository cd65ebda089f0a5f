package cli_test

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestOpenstackTagsCLI tags networks, a port and a router with the
// openstack CLI (create --tag, set --tag, unset --tag, set --no-tag) and
// filters listings with --tags, --any-tags, --not-tags and --not-any-tags,
// on SQLite (test/api runs the same on both stores).
func TestOpenstackTagsCLI(t *testing.T) {
	t.Parallel()
	c, _ := newCLI(t)
	rs := c.parallel(
		js("network", "create", "--tag", "red", "--tag", "blue", "rb"),
		js("network", "create", "--tag", "red", "r"),
		js("network", "create", "g"),
		js("router", "create", "--tag", "edge", "r1"),
	)
	var rb, r1 map[string]any
	c.decode(rs[0], &rb)
	c.check(rs[1])
	c.check(rs[2])
	c.decode(rs[3], &r1)
	if got := cliTags(rb["tags"]); !slices.Equal(got, []string{"blue", "red"}) {
		t.Errorf("network create --tag red --tag blue shows tags %v", got)
	}
	if got := cliTags(r1["tags"]); !slices.Equal(got, []string{"edge"}) {
		t.Errorf("router create --tag edge shows tags %v", got)
	}
	rs = c.parallel(
		[]string{"network", "set", "--tag", "green", "g"},
		js("port", "create", "--network", "rb", "--tag", "web", "p1"),
	)
	c.check(rs[0])
	var p1 map[string]any
	c.decode(rs[1], &p1)
	if got := cliTags(p1["tags"]); !slices.Equal(got, []string{"web"}) {
		t.Errorf("port create --tag web shows tags %v", got)
	}

	names := func(args ...string) []string {
		t.Helper()
		var l []map[string]any
		c.decode(c.run(js(append([]string{"network", "list"}, args...)...)...), &l)
		var out []string
		for _, n := range l {
			out = append(out, n["Name"].(string))
		}
		sort.Strings(out)
		return out
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tags", "red,blue"}, []string{"rb"}},
		{[]string{"--tags", "red"}, []string{"r", "rb"}},
		{[]string{"--any-tags", "blue,green"}, []string{"g", "rb"}},
		{[]string{"--not-tags", "red,blue"}, []string{"g", "r"}},
		{[]string{"--not-any-tags", "red"}, []string{"g"}},
	} {
		if got := names(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("network list %s: %v, want %v", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	c.check(c.run("network", "unset", "--tag", "red", "rb"))
	var shown map[string]any
	c.decode(c.run(js("network", "show", "rb")...), &shown)
	if got := cliTags(shown["tags"]); !slices.Equal(got, []string{"blue"}) {
		t.Errorf("after unset --tag red: tags %v, want [blue]", got)
	}
	c.check(c.run("network", "set", "--no-tag", "rb"))
	c.decode(c.run(js("network", "show", "rb")...), &shown)
	if got := cliTags(shown["tags"]); len(got) != 0 {
		t.Errorf("after set --no-tag: tags %v, want none", got)
	}
}

// cliTags reads the tags the CLI prints: a JSON list, or a
// comma-separated string in older clients.
func cliTags(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, e.(string))
		}
	case string:
		for s := range strings.SplitSeq(x, ",") {
			if s = strings.Trim(strings.TrimSpace(s), "'"); s != "" {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
