package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// TestAdminAPI: the export and erasure routes need the admin token, stream
// the audit log, erase a subject, and a replay of its dead delivery then
// answers 410.
func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	p := startVeil(t, writeConfigDests(t, dir, "destinations:"+destination("nowhere", "http://127.0.0.1:9/x", 1, "")+"\n"), &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	status, out, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 7), "admin-1")
	if err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	eventID := out["event_id"].(string)
	call := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, p.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/audit/export", "/v1/deliveries?status=dead"} {
		if code, body := call(http.MethodGet, path, "wrong"); code != 401 || !strings.Contains(body, `"error":"unauthorized"`) {
			t.Fatalf("%s with a wrong token: %d %s", path, code, body)
		}
	}
	code, body := call(http.MethodGet, "/v1/audit/export?format=csv&action=received", "e2e-admin-token")
	if code != 200 || !strings.HasPrefix(body, strings.Join(veil.AuditColumns, ",")) || !strings.Contains(body, eventID) {
		t.Fatalf("csv export: %d\n%s", code, body)
	}
	if code, body := call(http.MethodGet, "/v1/audit/export?format=xml", "e2e-admin-token"); code != 400 {
		t.Fatalf("bad format: %d %s", code, body)
	}
	// The delivery to the discard port dies after its one attempt.
	var deadID string
	waitFor(t, "the delivery to die", func() bool {
		_, body := call(http.MethodGet, "/v1/deliveries?status=dead", "e2e-admin-token")
		var out struct{ Deliveries []struct{ ID string } }
		json.Unmarshal([]byte(body), &out)
		if len(out.Deliveries) == 1 {
			deadID = out.Deliveries[0].ID
		}
		return deadID != ""
	})
	code, body = call(http.MethodDelete, "/v1/subjects/greenhouse:candidate:70000007", "e2e-admin-token")
	if code != 200 || !strings.Contains(body, `"events":1`) {
		t.Fatalf("erase: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/v1/deliveries/"+deadID+"/replay", "e2e-admin-token"); code != 410 || !strings.Contains(body, `"error":"gone"`) {
		t.Fatalf("replay after erasure: %d %s, want 410", code, body)
	}
	if code, body := call(http.MethodGet, "/v1/audit/export?format=jsonl&action=erased", "e2e-admin-token"); code != 200 || strings.Count(body, "\n") != 1 {
		t.Fatalf("erased rows: %d\n%s", code, body)
	}
	p.stop(t)
}
