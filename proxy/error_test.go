package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/veilhq/veil"
)

// TestWriteError: a failure of Veil's own answers 500 with an error id
// that the one log line carries too, and never its text; a caller's error
// answers its status without an id or a log line.
func TestWriteError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := httptest.NewRequest(http.MethodGet, "/v1/deliveries", nil)
	w := httptest.NewRecorder()
	writeError(w, r, log, errors.New("disk on fire at /var/lib/veil"))
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 500 || !strings.HasPrefix(body["error_id"], "err_") || strings.Contains(w.Body.String(), "disk on fire") {
		t.Fatalf("a fault: %d %s", w.Code, w.Body)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), `"error_id":"`+body["error_id"]+`"`) ||
		!strings.Contains(logs.String(), "disk on fire") {
		t.Fatalf("log: %s", logs.String())
	}
	logs.Reset()
	w = httptest.NewRecorder()
	writeError(w, r, log, veil.Errorf(veil.EGONE, "Past retention."))
	if w.Code != 410 || strings.Contains(w.Body.String(), "error_id") || logs.Len() != 0 {
		t.Fatalf("a caller's error: %d %s; log %q", w.Code, w.Body, logs.String())
	}
	if veil.ServerFault(nil) || !veil.ServerFault(errors.New("x")) || veil.ServerFault(veil.Errorf(veil.ENOTFOUND, "x")) {
		t.Fatal("ServerFault: only a non-nil error of Veil's own")
	}
	if veil.HTTPStatus(veil.Errorf(veil.EUNAVAILABLE, "x")) != 503 {
		t.Fatal("store_unavailable is 503 for the API and the console alike")
	}
}
