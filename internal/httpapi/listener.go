package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/api/neutron"
)

// Listener wraps ln so that the few errors net/http answers by itself,
// before any handler runs (a header block over MaxHeaderBytes, a malformed
// request, an unsupported transfer encoding), reach clients as NeutronError
// JSON like every other error, instead of net/http's plain text.
//
// net/http writes each of those replies in one Write on the raw
// connection, as a status line followed by exactly the canned headers
// below; no reply of the API's handlers has that shape (they always carry
// a request id and a JSON or empty body).
func Listener(ln net.Listener) net.Listener { return jsonErrListener{ln} }

// cannedHeaders follow the status line of net/http's own error replies.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

type jsonErrListener struct{ net.Listener }

func (l jsonErrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrConn{c}, nil
}

type jsonErrConn struct{ net.Conn }

func (c jsonErrConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	reply, ok := rewriteCanned(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(reply); err != nil {
		return 0, err
	}
	return len(p), nil
}

// rewriteCanned turns one of net/http's canned plain-text error replies
// into the same status with a NeutronError body; ok is false for anything
// else.
func rewriteCanned(p []byte) (reply []byte, ok bool) {
	status, rest, found := bytes.Cut(p[len("HTTP/1.1 "):], []byte(cannedHeaders))
	if !found || len(status) < 3 || bytes.IndexByte(status, '\n') >= 0 {
		return nil, false
	}
	code, err := strconv.Atoi(string(status[:3]))
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	text := http.StatusText(code)
	// The canned body repeats the status line, sometimes with a detail
	// ("400 Bad Request: missing required Host header"), or is a detail
	// of its own ("Unsupported transfer encoding").
	msg := string(rest)
	if head, ok := strings.CutPrefix(msg, string(status[:3])+" "+text); ok {
		msg = strings.TrimPrefix(head, ": ")
	}
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge:
		msg = "The request's header fields are larger than this server accepts."
	case msg == "":
		msg = "Malformed request."
	}
	body, err := json.Marshal(neutron.Typed(code, "HTTP"+strings.NewReplacer(" ", "", "-", "").Replace(text), "%s", msg).Body())
	if err != nil {
		return nil, false
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-Openstack-Request-Id: req-%s\r\nConnection: close\r\n\r\n", code, text, len(body), uuid.NewString())
	b.Write(body)
	return b.Bytes(), true
}
