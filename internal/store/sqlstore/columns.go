package sqlstore

import (
	"database/sql/driver"
	"encoding"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/neutrino-net/neutrino/internal/model"
)

// Column adapters: each wraps a pointer into a model value and is both a
// driver.Valuer (to bind it) and a sql.Scanner (to read it back).

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// tsCol is a timestamp, stored in UTC with second precision.
type tsCol struct{ t *time.Time }

func (c tsCol) Value() (driver.Value, error) { return normTime(*c.t), nil }

func (c tsCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.t = normTime(v)
		return nil
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	}
	return fmt.Errorf("scan timestamp: unexpected %T", src)
}

func (c tsCol) parse(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("scan timestamp: %w", err)
	}
	*c.t = normTime(t)
	return nil
}

// nullStr maps "" to NULL.
type nullStr struct{ p *string }

func (c nullStr) Value() (driver.Value, error) {
	if *c.p == "" {
		return nil, nil
	}
	return *c.p, nil
}

func (c nullStr) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = ""
	case string:
		*c.p = v
	case []byte:
		*c.p = string(v)
	default:
		return fmt.Errorf("scan string: unexpected %T", src)
	}
	return nil
}

// secretCol stores a model.Secret as its plain value: the column adapter is
// the one place that reveals it.
type secretCol struct{ p *model.Secret }

func (c secretCol) Value() (driver.Value, error) { return c.p.Reveal(), nil }

func (c secretCol) Scan(src any) error {
	var s string
	if err := (nullStr{&s}).Scan(src); err != nil {
		return fmt.Errorf("scan secret: %w", err)
	}
	*c.p = model.Secret(s)
	return nil
}

// nullInt maps a nil *int to NULL.
type nullInt struct{ p **int }

func (c nullInt) Value() (driver.Value, error) {
	if *c.p == nil {
		return nil, nil
	}
	return int64(**c.p), nil
}

func (c nullInt) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case int64:
		n := int(v)
		*c.p = &n
	default:
		return fmt.Errorf("scan integer: unexpected %T", src)
	}
	return nil
}

// textCol stores a value (netip.Addr, netip.Prefix) as its text form; the
// zero value, whose text is empty, is NULL.
type textCol struct {
	v interface {
		encoding.TextMarshaler
		encoding.TextUnmarshaler
	}
}

func (c textCol) Value() (driver.Value, error) {
	b, err := c.v.MarshalText()
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return string(b), nil
}

func (c textCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return c.v.UnmarshalText(nil)
	case string:
		return c.v.UnmarshalText([]byte(v))
	case []byte:
		return c.v.UnmarshalText(v)
	}
	return fmt.Errorf("scan text: unexpected %T", src)
}

// jsonCol stores a value as JSON text (nil slices and maps as null).
type jsonCol[T any] struct{ p *T }

func (c jsonCol[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(*c.p)
	return string(b), err
}

func (c jsonCol[T]) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan json: unexpected %T", src)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("scan json: %w", err)
	}
	*c.p = v
	return nil
}

// jsonList stores a slice of S as a JSON array of D, S's storage form (same
// fields, with stable lower-case names).
type jsonList[S, D any] struct {
	p    *[]S
	to   func(S) D
	from func(D) S
}

func (c jsonList[S, D]) Value() (driver.Value, error) {
	var d []D
	if *c.p != nil {
		d = make([]D, len(*c.p))
		for i, s := range *c.p {
			d[i] = c.to(s)
		}
	}
	return jsonCol[[]D]{&d}.Value()
}

func (c jsonList[S, D]) Scan(src any) error {
	var d []D
	if err := (jsonCol[[]D]{&d}).Scan(src); err != nil {
		return err
	}
	*c.p = nil
	if d != nil {
		*c.p = make([]S, len(d))
		for i, v := range d {
			(*c.p)[i] = c.from(v)
		}
	}
	return nil
}

type poolJSON struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

type routeJSON struct {
	Destination netip.Prefix `json:"destination"`
	Nexthop     netip.Addr   `json:"nexthop"`
}

type pairJSON struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

func poolsCol(p *[]model.AllocationPool) jsonList[model.AllocationPool, poolJSON] {
	return jsonList[model.AllocationPool, poolJSON]{p,
		func(v model.AllocationPool) poolJSON { return poolJSON(v) },
		func(v poolJSON) model.AllocationPool { return model.AllocationPool(v) }}
}

func hostRoutesCol(p *[]model.HostRoute) jsonList[model.HostRoute, routeJSON] {
	return jsonList[model.HostRoute, routeJSON]{p,
		func(v model.HostRoute) routeJSON { return routeJSON(v) },
		func(v routeJSON) model.HostRoute { return model.HostRoute(v) }}
}

func routesCol(p *[]model.Route) jsonList[model.Route, routeJSON] {
	return jsonList[model.Route, routeJSON]{p,
		func(v model.Route) routeJSON { return routeJSON(v) },
		func(v routeJSON) model.Route { return model.Route(v) }}
}

func pairsCol(p *[]model.AddressPair) jsonList[model.AddressPair, pairJSON] {
	return jsonList[model.AddressPair, pairJSON]{p,
		func(v model.AddressPair) pairJSON { return pairJSON(v) },
		func(v pairJSON) model.AddressPair { return model.AddressPair(v) }}
}

// gwCol is one column of a router's optional gateway: 0 network id, 1 port
// id, 2 enable_snat. A non-NULL network id creates the gateway on scan, so
// gw_network_id must come before the other two in the column list.
type gwCol struct {
	r     *model.Router
	field int
}

func (c gwCol) Value() (driver.Value, error) {
	g := c.r.Gateway
	switch {
	case c.field == 2:
		return g != nil && g.EnableSNAT, nil
	case g == nil:
		return nil, nil
	case c.field == 0:
		return nullStr{&g.NetworkID}.Value()
	default:
		return nullStr{&g.PortID}.Value()
	}
}

func (c gwCol) Scan(src any) error {
	if c.field == 0 && src != nil {
		c.r.Gateway = &model.RouterGateway{}
	}
	g := c.r.Gateway
	switch {
	case g == nil:
		return nil
	case c.field == 0:
		return nullStr{&g.NetworkID}.Scan(src)
	case c.field == 1:
		return nullStr{&g.PortID}.Scan(src)
	}
	var b bool
	if err := convertBool(src, &b); err != nil {
		return err
	}
	g.EnableSNAT = b
	return nil
}

func convertBool(src any, b *bool) error {
	v, err := driver.Bool.ConvertValue(src)
	if err != nil {
		return fmt.Errorf("scan bool: %w", err)
	}
	*b = v.(bool)
	return nil
}
