package libreswan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	v2conn = "neutrino-23a416c8-5c65-4ee5-8231-ba8ac11ac79d"
	v1conn = "neutrino-5a83b33e-3ec7-4e20-ab95-1705ba9b309d"
)

func testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseShowStates(t *testing.T) {
	v2 := ParseShowStates(testdata(t, "ikev2-established-showstates.txt"))
	want := []State{
		{Serial: 2, Conn: v2conn, Name: "STATE_V2_ESTABLISHED_IKE_SA", Established: true},
		{Serial: 3, Conn: v2conn, Name: "STATE_V2_ESTABLISHED_CHILD_SA", Child: true, Established: true},
	}
	if !slices.Equal(v2, want) {
		t.Errorf("IKEv2 states = %+v, want %+v", v2, want)
	}
	v1 := ParseShowStates(testdata(t, "ikev1-established-showstates.txt"))
	var ike, child []int
	for _, s := range v1 {
		if s.Conn != v1conn || !s.Established {
			t.Errorf("state %+v", s)
		}
		if s.Child {
			child = append(child, s.Serial)
		} else {
			ike = append(ike, s.Serial)
		}
	}
	if !slices.Equal(ike, []int{12, 13}) || !slices.Equal(child, []int{14, 15}) {
		t.Errorf("IKEv1: ISAKMP SAs %v, IPsec SAs %v; want [12 13] and [14 15]", ike, child)
	}
	// whack --status holds the same state lines.
	if got := ParseShowStates(testdata(t, "ikev2-established-status.txt")); !slices.Equal(got, want) {
		t.Errorf("states in --status = %+v", got)
	}
	if got := ParseConnNames(testdata(t, "ikev2-established-status.txt")); !slices.Equal(got, []string{v2conn}) {
		t.Errorf("connections in --status = %v", got)
	}
	// A connection split by leftsubnets, and an instance.
	got := ParseShowStates(`000 #7: "x/1x2":500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); newest;
000 #8: "y"[1] 192.0.2.9:500 STATE_V2_PARENT_I1 (sent IKE_SA_INIT request); RETRANSMIT in 1s;`)
	if len(got) != 2 || got[0].Conn != "x" || !got[0].Child || got[1].Conn != "y" || got[1].Established || got[1].Child {
		t.Errorf("aliases: %+v", got)
	}
}

func TestParseTrafficStatus(t *testing.T) {
	got := ParseTrafficStatus(testdata(t, "ikev2-established-trafficstatus.txt"))
	if !slices.Equal(got, []Traffic{{Serial: 3, Conn: v2conn, InBytes: 82, OutBytes: 82}}) {
		t.Errorf("IKEv2 = %+v", got)
	}
	got = ParseTrafficStatus(testdata(t, "ikev1-established-trafficstatus.txt"))
	if !slices.Equal(got, []Traffic{{14, v1conn, 0, 0}, {15, v1conn, 82, 82}}) {
		t.Errorf("IKEv1 = %+v", got)
	}
}

// lastReason is the reason a connection shows after the log, as the
// router applies its events.
func lastReason(log, conn string) string {
	var cur reason
	had := false
	for _, l := range strings.Split(log, "\n") {
		if ev := ParseLogLine(l); ev.Conn == conn {
			cur, had = nextReason(cur, had, ev)
		}
	}
	return cur.text
}

// TestNextReason: within one attempt the more telling reason stays; the
// connection's next attempt, or the peer's (a newer state we answer),
// replaces it; an IPsec SA clears it.
func TestNextReason(t *testing.T) {
	auth := LogEvent{Conn: "c", Serial: 2, Reason: ReasonAuth, Rank: rankAuth}
	cur, had := nextReason(reason{}, false, auth)
	if !had || cur.text != ReasonAuth || cur.serial != 2 {
		t.Fatalf("first failure: %+v %v", cur, had)
	}
	for _, tc := range []struct {
		name string
		ev   LogEvent
		want string
	}{
		{"a weaker reason of the same state", LogEvent{Conn: "c", Serial: 2, Reason: ReasonUnreachable, Rank: rankUnreachable}, ReasonAuth},
		{"a weaker reason of an older state", LogEvent{Conn: "c", Serial: 1, Reason: ReasonUnreachable, Rank: rankUnreachable}, ReasonAuth},
		{"a weaker reason of a peer line", LogEvent{Peer: "192.0.2.2", Reason: ReasonNoProposal, Rank: rankNoProposal}, ReasonAuth},
		{"the peer's next try, answered NO_PROPOSAL_CHOSEN", LogEvent{Conn: "c", Serial: 5, Reason: ReasonNoProposal, Rank: rankNoProposal}, ReasonNoProposal},
		{"an established IKE SA", LogEvent{Conn: "c", Serial: 6, Up: true}, ReasonAuth},
		{"an established IPsec SA", LogEvent{Conn: "c", Serial: 7, Up: true, Child: true}, ""},
	} {
		if got, _ := nextReason(cur, had, tc.ev); got.text != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got.text, tc.want)
		}
	}
	fresh, _ := nextReason(cur, had, LogEvent{Conn: "c", Serial: 8, Initiating: true})
	if got, _ := nextReason(fresh, true, LogEvent{Conn: "c", Serial: 8, Reason: ReasonUnreachable, Rank: rankUnreachable}); got.text != ReasonUnreachable {
		t.Errorf("a new attempt's weaker reason: %q, want it", got.text)
	}
}

func TestLogReasons(t *testing.T) {
	for _, tc := range []struct{ file, conn, want string }{
		{"ikev2-auth-failed.log", v2conn, ReasonAuth},
		// ikev1-auth-failed.log is cut before IKEv1's failure shows; the
		// line pluto 4.10 logs then is in TestParseLogLine.
		{"ikev2-no-proposal-chosen.log", v2conn, ReasonNoProposal},
		{"ikev1-no-proposal-chosen.log", v1conn, ReasonNoProposal},
		{"ikev2-peer-unreachable.log", v2conn, ReasonUnreachable},
		{"ikev1-peer-unreachable.log", v1conn, ReasonUnreachable},
	} {
		if got := lastReason(testdata(t, tc.file), tc.conn); got != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.file, got, tc.want)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want LogEvent
	}{
		{`Dec  5 17:50:26.266566: "c" #8: initiator established Child SA using #7; IPsec tunnel [...]`,
			LogEvent{Conn: "c", Serial: 8, Up: true, Child: true}},
		{`Dec  5 17:50:26.266566: "c/2x1" #2: responder established IKE SA; authenticated peer using authby=secret`,
			LogEvent{Conn: "c", Serial: 2, Up: true}},
		{`Dec  5 18:50:26.1: "c" #9: initiator rekeyed Child SA #8 using #7; IPsec tunnel [...]`,
			LogEvent{Conn: "c", Serial: 9, Up: true, Child: true, Rekey: true}},
		{`Dec  5 17:50:13.456262: "c" #2: deleting state (STATE_V2_ESTABLISHED_IKE_SA) aged 11.45197s`,
			LogEvent{Conn: "c", Serial: 2, Down: true}},
		{`Dec  5 17:51:08.874510: "c" #21: initiating IKEv1 Main Mode connection`,
			LogEvent{Conn: "c", Serial: 21, Initiating: true}},
		{`Dec  5 17:50:31.228172: packet from 203.0.113.10:500: ISAKMP_v2_IKE_SA_INIT message received on 203.0.113.1:500 but no suitable connection found with IKEv2 policy`,
			LogEvent{Peer: "203.0.113.10", Reason: ReasonNoProposal, Rank: rankNoProposal}},
		{`Dec  6 02:45:46.376600: ERROR: "c" #13: send on qg-sun from 192.0.2.2:500 to 198.51.100.9:500 using UDP failed in EVENT_RETRANSMIT: Network is unreachable (errno 101)`,
			LogEvent{Conn: "c", Serial: 13, Reason: ReasonUnreachable, Rank: rankUnreachable}},
		{`Dec  5 17:50:31.228172: forgetting secrets`, LogEvent{}},
		{`Dec  5 17:51:09.401847: "c" #21: STATE_MAIN_I3: retransmission; will wait 0.5 seconds for response`,
			LogEvent{Conn: "c", Serial: 21, Reason: ReasonAuthV1, Rank: rankAuth}},
		{`Dec  5 17:52:10.1: "c" #21: STATE_MAIN_I3: 60 second timeout exceeded after 7 retransmits.  Possible authentication failure: no acceptable response to our first encrypted message`,
			LogEvent{Conn: "c", Serial: 21, Reason: ReasonAuthV1, Rank: rankAuth}},
		{`Dec  5 17:51:52.1: "c" #18: probable authentication failure (mismatch of preshared secrets?): malformed payload in packet`,
			LogEvent{Conn: "c", Serial: 18, Reason: ReasonAuth, Rank: rankAuth}},
	} {
		if got := ParseLogLine(tc.line); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

// FuzzParsers: the parsers take any text without panicking, and what
// they return comes from it.
func FuzzParsers(f *testing.F) {
	for _, n := range []string{"ikev2-established-showstates.txt", "ikev1-established-trafficstatus.txt",
		"ikev2-established-status.txt", "ikev2-auth-failed.log", "ikev1-peer-unreachable.log"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(string(b))
	}
	f.Add(`000 #: "`)
	f.Add("006 #99999999999999999999: \"x\", inBytes=-1")
	f.Fuzz(func(t *testing.T, s string) {
		for _, st := range ParseShowStates(s) {
			if !strings.Contains(s, st.Conn) || st.Serial < 0 || !strings.Contains(s, st.Name) {
				t.Fatalf("state %+v not from the input", st)
			}
		}
		for _, tr := range ParseTrafficStatus(s) {
			if !strings.Contains(s, tr.Conn) || tr.Serial < 0 {
				t.Fatalf("traffic %+v not from the input", tr)
			}
		}
		for _, n := range ParseConnNames(s) {
			if !strings.Contains(s, `"`+n) {
				t.Fatalf("name %q not from the input", n)
			}
		}
		for _, l := range strings.Split(s, "\n") {
			ev := ParseLogLine(l)
			if !strings.Contains(l, ev.Conn) || !strings.Contains(l, ev.Peer) || ev.Serial < 0 {
				t.Fatalf("event %+v not from %q", ev, l)
			}
		}
	})
}
