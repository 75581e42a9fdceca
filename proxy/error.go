package proxy

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/veilhq/veil"
)

var codeStatus = map[string]int{
	veil.ECONFLICT:        http.StatusConflict,
	veil.EINVALID:         http.StatusBadRequest,
	veil.EMALFORMED:       http.StatusBadRequest,
	veil.EUNAUTHORIZED:    http.StatusUnauthorized,
	veil.EBADSIGNATURE:    http.StatusUnauthorized,
	veil.ENOSIGNATURE:     http.StatusUnauthorized,
	veil.ESTALE:           http.StatusUnauthorized,
	veil.EFORBIDDEN:       http.StatusForbidden,
	veil.ENOTFOUND:        http.StatusNotFound,
	veil.EUNKNOWNSOURCE:   http.StatusNotFound,
	veil.EGONE:            http.StatusGone,
	veil.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	veil.ERATELIMITED:     http.StatusTooManyRequests,
	veil.EINTERNAL:        http.StatusInternalServerError,
	veil.EUPSTREAM:        http.StatusBadGateway,
	veil.EUNAVAILABLE:     http.StatusServiceUnavailable,
	veil.EUPSTREAMTIMEOUT: http.StatusGatewayTimeout,
	veil.EINVALIDSUBJECT:  http.StatusBadRequest,
	veil.EUNKNOWNSUBJECT:  http.StatusNotFound,
}

// ErrorStatus returns the HTTP status for an error code.
func ErrorStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError answers err as {"error": code, "message": sentence} with the
// status of its code. Internal errors are logged here, once; their text
// never reaches the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code, msg := veil.ErrorCode(err), veil.ErrorMessage(err)
	if code == veil.EINTERNAL || code == veil.EUNAVAILABLE {
		log.Error("request failed", "method", r.Method, "route", routeName(r), "err", err)
	}
	writeJSON(w, ErrorStatus(code), map[string]string{"error": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
