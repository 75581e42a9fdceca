package proxy

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/veilhq/veil"
)

// writeError answers err as {"error": code, "message": sentence} with the
// status of its code. A failure of Veil's own (5xx) is logged here, once,
// under an error id the answer carries too ("error_id"), so a person's
// report of it can be found in the log; its text never reaches the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code, msg := veil.ErrorCode(err), veil.ErrorMessage(err)
	body := map[string]string{"error": code, "message": msg}
	if veil.ServerFault(err) {
		id := veil.ErrorID()
		body["error_id"] = id
		log.Error("request failed", "error_id", id, "method", r.Method, "route", routeName(r), "err", err)
	}
	writeJSON(w, veil.CodeStatus(code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
