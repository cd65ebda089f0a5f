package libreswan

import (
	"errors"
	"strings"
)

// SplitExport takes Neutrino's libreswan peer-config export (GET
// .../peer-config?format=libreswan: an ipsec.conf conn section, then the
// ipsec.secrets line, each under a "# /etc/ipsec.d/<name>.<ext>" comment)
// apart into the connection's name, its conf text and its secrets text,
// as an administrator would copy them into two files.
func SplitExport(export string) (name, conf, secrets string, err error) {
	var cur *strings.Builder
	var c, s strings.Builder
	for _, l := range strings.SplitAfter(export, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "# /etc/ipsec.d/") && strings.HasSuffix(t, ".conf"):
			cur = &c
		case strings.HasPrefix(t, "# /etc/ipsec.d/") && strings.HasSuffix(t, ".secrets"):
			cur = &s
		case strings.HasPrefix(t, "conn ") && cur == &c:
			if name != "" {
				return "", "", "", errors.New("libreswan: the export holds more than one conn")
			}
			name = strings.TrimSpace(strings.TrimPrefix(t, "conn "))
		}
		if cur != nil {
			cur.WriteString(l)
		}
	}
	if name == "" || s.Len() == 0 {
		return "", "", "", errors.New("libreswan: not a libreswan peer-config export (no conn section or no secrets part)")
	}
	return name, c.String(), s.String(), nil
}
