package libreswan

import (
	"strconv"
	"strings"
)

// Parsers of pluto 4.10's own reports: whack --showstates (one line per
// IKE and IPsec state), whack --trafficstatus (one line per established
// IPsec SA with its byte counters), whack --status (for the connection
// list) and pluto's log lines. They are pure and fuzzed; real captures
// are in testdata/.

// State is one line of whack --showstates.
type State struct {
	Serial int    // #N
	Conn   string // the connection name as Neutrino loaded it (aliases of name/1x1 fold into name)
	Name   string // STATE_V2_ESTABLISHED_CHILD_SA, STATE_MAIN_I4, ...
	// Child is an IPsec SA (a Child SA, a Quick Mode SA), else an IKE SA.
	Child bool
	// Established: the SA is up (an IPsec SA installed in the kernel).
	Established bool
}

// baseConn folds pluto's names for the parts of one connection into the
// name Neutrino loaded: "id/1x2" (leftsubnets) and an instance "id"[1]
// are both "id".
func baseConn(n string) string {
	if i := strings.IndexByte(n, '/'); i >= 0 {
		n = n[:i]
	}
	return n
}

// quoted returns the text between the first two double quotes of s
// (at its start, after spaces) and what follows.
func quoted(s string) (name, rest string, ok bool) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}

// serial parses "#N" at the start of s (after spaces).
func serial(s string) (int, string, bool) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "#") {
		return 0, s, false
	}
	i := 1
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[1:i])
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}

// stripCode removes whack's "000 " / "006 " line prefix.
func stripCode(l string) string {
	if len(l) > 4 && l[3] == ' ' && strings.Trim(l[:3], "0123456789") == "" {
		return l[4:]
	}
	return l
}

// ParseShowStates parses whack --showstates. Lines it does not know (the
// per-SA SPI and traffic lines) are skipped.
func ParseShowStates(out string) []State {
	var states []State
	for _, l := range strings.Split(out, "\n") {
		n, rest, ok := serial(stripCode(l))
		if !ok || !strings.HasPrefix(rest, ": ") {
			continue
		}
		name, rest, ok := quoted(rest[2:])
		if !ok {
			continue
		}
		// "name":500 STATE_X (text); ... — or "name"[1] 1.2.3.4:500 STATE_X
		i := strings.Index(rest, " STATE_")
		if i < 0 {
			continue // the SPI/traffic line of an IPsec SA
		}
		st := rest[i+1:]
		if j := strings.IndexByte(st, ' '); j >= 0 {
			st = st[:j]
		}
		desc := rest[i:]
		child := strings.Contains(st, "CHILD_SA") || strings.HasPrefix(st, "STATE_QUICK_") ||
			strings.Contains(desc, "(IPsec SA established)")
		est := strings.Contains(desc, "(established Child SA)") || strings.Contains(desc, "(IPsec SA established)") ||
			strings.Contains(desc, "(established IKE SA)") || strings.Contains(desc, "(IKE SA established)")
		states = append(states, State{Serial: n, Conn: baseConn(name), Name: st, Child: child, Established: est})
	}
	return states
}

// Traffic is one line of whack --trafficstatus: an established IPsec SA.
type Traffic struct {
	Serial            int
	Conn              string
	InBytes, OutBytes uint64
}

// ParseTrafficStatus parses whack --trafficstatus.
func ParseTrafficStatus(out string) []Traffic {
	var ts []Traffic
	for _, l := range strings.Split(out, "\n") {
		n, rest, ok := serial(stripCode(l))
		if !ok || !strings.HasPrefix(rest, ": ") {
			continue
		}
		name, rest, ok := quoted(rest[2:])
		if !ok {
			continue
		}
		t := Traffic{Serial: n, Conn: baseConn(name)}
		for _, f := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok {
				continue
			}
			switch k {
			case "inBytes":
				t.InBytes, _ = strconv.ParseUint(v, 10, 64)
			case "outBytes":
				t.OutBytes, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		ts = append(ts, t)
	}
	return ts
}

// ParseConnNames returns the connections whack --status lists (base
// names, each once).
func ParseConnNames(out string) []string {
	seen := map[string]bool{}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		name, rest, ok := quoted(stripCode(l))
		if !ok || !strings.HasPrefix(rest, ":") {
			continue
		}
		if b := baseConn(name); !seen[b] {
			seen[b] = true
			names = append(names, b)
		}
	}
	return names
}

// Failure ranks: within one negotiation attempt a more telling reason is
// kept over a less telling one (a timeout after the peer said
// NO_PROPOSAL_CHOSEN is still "no proposal chosen").
const (
	rankUnreachable = 1 + iota
	rankNoProposal
	rankAuth
)

// Reasons a connection shows when its negotiation failed.
const (
	ReasonAuth        = "authentication failed: the pre-shared keys or identities differ"
	ReasonNoProposal  = "no proposal chosen: the peer accepts none of our algorithms"
	ReasonUnreachable = "peer unreachable: no answer to IKE messages"
	// ReasonAuthV1 is an IKEv1 initiator's view of a PSK mismatch: the
	// peer cannot decrypt our Main Mode authentication (encrypted with a
	// key derived from the PSK) and does not answer it.
	ReasonAuthV1 = "authentication failed: the peer does not answer our IKEv1 authentication (the pre-shared keys likely differ)"
)

// LogEvent is what one pluto log line says about a connection.
type LogEvent struct {
	// Conn is the connection the line is about ("" if it names none);
	// Peer the peer address of a "packet from <peer>:<port>:" line.
	Conn, Peer string
	// Serial is the state the line is about (0: none).
	Serial int
	// Reason and Rank: a negotiation failure (Reason "" for none).
	Reason string
	Rank   int
	// Initiating: a new negotiation attempt starts.
	Initiating bool
	// Up and Down: an SA was established or deleted; Child says an IPsec
	// SA (else IKE). Rekey: a replacement for an existing SA.
	Up, Down, Child, Rekey bool
}

// failures maps pluto 4.10 log text to reasons; the first match wins.
var failures = []struct {
	match  string
	reason string
	rank   int
}{
	{"authentication failed", ReasonAuth, rankAuth},
	{"AUTHENTICATION_FAILED", ReasonAuth, rankAuth},
	{"probable authentication failure", ReasonAuth, rankAuth},
	{"mismatch of preshared secrets", ReasonAuth, rankAuth},
	{"INVALID_HASH_INFORMATION", ReasonAuth, rankAuth},
	{"STATE_MAIN_I3: retransmission", ReasonAuthV1, rankAuth},
	{"Possible authentication failure", ReasonAuthV1, rankAuth},
	{"timeout exceeded after", ReasonUnreachable, rankUnreachable},
	{"No route to host", ReasonUnreachable, rankUnreachable},
	{"Network is unreachable", ReasonUnreachable, rankUnreachable},
	{"NO_PROPOSAL_CHOSEN", ReasonNoProposal, rankNoProposal},
	{"no suitable connection found", ReasonNoProposal, rankNoProposal},
	{"no acceptable Oakley Transform", ReasonNoProposal, rankNoProposal},
	{"no acceptable", ReasonNoProposal, rankNoProposal},
}

// ParseLogLine parses one line of pluto's log (with logtime=yes: "Dec  5
// 17:50:13.878191: " first).
func ParseLogLine(line string) LogEvent {
	var ev LogEvent
	// Skip the time stamp: up to ": " after the clock.
	if i := strings.Index(line, ": "); i >= 0 && i < 32 && strings.Count(line[:i], ":") >= 2 {
		line = line[i+2:]
	}
	// A failed system call is "ERROR: " before the connection's name.
	line = strings.TrimPrefix(line, "ERROR: ")
	text := line
	if name, rest, ok := quoted(line); ok {
		ev.Conn = baseConn(name)
		// "name"[1] 1.2.3.4 #3: or "name" #3: or "name":
		if j := strings.IndexByte(rest, '#'); j >= 0 && j < 64 {
			if n, r, ok := serial(rest[j:]); ok {
				ev.Serial, rest = n, r
			}
		}
		text = rest
	} else if strings.HasPrefix(line, "packet from ") {
		addr := strings.TrimPrefix(line, "packet from ")
		if j := strings.Index(addr, ": "); j >= 0 {
			addr = addr[:j]
			text = line[len("packet from ")+j:]
		}
		if k := strings.LastIndexByte(addr, ':'); k >= 0 {
			addr = addr[:k]
		}
		ev.Peer = strings.Trim(addr, "[]")
	} else {
		return ev
	}
	for _, f := range failures {
		if strings.Contains(text, f.match) {
			ev.Reason, ev.Rank = f.reason, f.rank
			break
		}
	}
	switch {
	case strings.Contains(text, "initiating ") && strings.Contains(text, " connection") && !strings.Contains(text, "to replace"):
		ev.Initiating = true
	case strings.Contains(text, "rekeyed Child SA"):
		ev.Up, ev.Child, ev.Rekey = true, true, true
	case strings.Contains(text, "rekeyed IKE SA"):
		ev.Up, ev.Rekey = true, true
	case strings.Contains(text, "established Child SA") || strings.Contains(text, "IPsec SA established"):
		ev.Up, ev.Child = true, true
	case strings.Contains(text, "established IKE SA") || strings.Contains(text, "ISAKMP SA established") ||
		strings.Contains(text, "IKE SA established"):
		ev.Up = true
	case strings.Contains(text, "deleting state (STATE_V2_ESTABLISHED_CHILD_SA") ||
		strings.Contains(text, "deleting state (STATE_QUICK_I2") || strings.Contains(text, "deleting state (STATE_QUICK_R2"):
		ev.Down, ev.Child = true, true
	case strings.Contains(text, "deleting state (STATE_V2_ESTABLISHED_IKE_SA") ||
		strings.Contains(text, "deleting state (STATE_MAIN_I4") || strings.Contains(text, "deleting state (STATE_MAIN_R3") ||
		strings.Contains(text, "deleting state (STATE_AGGR_I2") || strings.Contains(text, "deleting state (STATE_AGGR_R2"):
		ev.Down = true
	}
	if strings.Contains(text, "to replace") || strings.Contains(text, "rekey") && ev.Up {
		ev.Rekey = true
	}
	return ev
}
