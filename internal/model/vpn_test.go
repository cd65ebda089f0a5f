package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const psk = "s3cr3t-ключ"
	conn := IPsecSiteConnection{ID: "c1", PSK: psk}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("text", "psk", conn.PSK, "conn", conn)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("json", "psk", conn.PSK, "conn", conn)
	data, _ := json.Marshal(conn)
	for _, out := range []string{
		fmt.Sprint(conn.PSK), fmt.Sprintf("%v %+v %#v %s", conn, conn, conn, conn.PSK), logs.String(), string(data),
		fmt.Errorf("wrapped: %v", conn.PSK).Error(),
	} {
		if strings.Contains(out, "s3cr3t") {
			t.Fatalf("secret printed: %s", out)
		}
		if !strings.Contains(out, "***") {
			t.Fatalf("no redaction marker: %s", out)
		}
	}
	if conn.PSK.Reveal() != psk {
		t.Fatal("Reveal lost the value")
	}
}
