package veil

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes returned in the JSON error body {"error": code, "message": …}.
const (
	ECONFLICT        = "conflict"
	EINTERNAL        = "internal"
	EINVALID         = "invalid"
	ENOTFOUND        = "not_found"
	EUNAUTHORIZED    = "unauthorized"
	EFORBIDDEN       = "forbidden"
	EGONE            = "gone"
	ETOOLARGE        = "payload_too_large"
	EMALFORMED       = "malformed_json"
	EUNAVAILABLE     = "store_unavailable"
	EUNKNOWNSOURCE   = "unknown_source"
	EBADSIGNATURE    = "invalid_signature"
	ENOSIGNATURE     = "missing_signature"
	ESTALE           = "stale_timestamp"
	ERATELIMITED     = "rate_limited"
	EUPSTREAM        = "upstream_error"
	EUPSTREAMTIMEOUT = "upstream_timeout"
	// EINVALIDSUBJECT is a subject reference that is not of a configured
	// source's forms; EUNKNOWNSUBJECT one Veil holds nothing about.
	EINVALIDSUBJECT = "invalid_subject"
	EUNKNOWNSUBJECT = "unknown_subject"
)

// Error is an error a client may see: a code from the list above and a safe
// human sentence. Messages never carry a payload value.
type Error struct {
	Code    string
	Message string
}

// Error implements error: the message alone, a sentence a user can act on.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic sentence for any other error so internals never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// codeStatus is the HTTP status of each code: the one map the API and the
// console answer with.
var codeStatus = map[string]int{
	ECONFLICT:        http.StatusConflict,
	EINVALID:         http.StatusBadRequest,
	EMALFORMED:       http.StatusBadRequest,
	EUNAUTHORIZED:    http.StatusUnauthorized,
	EBADSIGNATURE:    http.StatusUnauthorized,
	ENOSIGNATURE:     http.StatusUnauthorized,
	ESTALE:           http.StatusUnauthorized,
	EFORBIDDEN:       http.StatusForbidden,
	ENOTFOUND:        http.StatusNotFound,
	EUNKNOWNSOURCE:   http.StatusNotFound,
	EGONE:            http.StatusGone,
	ETOOLARGE:        http.StatusRequestEntityTooLarge,
	ERATELIMITED:     http.StatusTooManyRequests,
	EINTERNAL:        http.StatusInternalServerError,
	EUPSTREAM:        http.StatusBadGateway,
	EUNAVAILABLE:     http.StatusServiceUnavailable,
	EUPSTREAMTIMEOUT: http.StatusGatewayTimeout,
	EINVALIDSUBJECT:  http.StatusBadRequest,
	EUNKNOWNSUBJECT:  http.StatusNotFound,
}

// CodeStatus is the HTTP status for an error code (500 for an unknown one).
func CodeStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// HTTPStatus is the HTTP status for err.
func HTTPStatus(err error) int { return CodeStatus(ErrorCode(err)) }

// ServerFault reports whether err is Veil's fault (a 5xx the operator must
// look at), not the caller's; false for nil.
func ServerFault(err error) bool { return err != nil && HTTPStatus(err) >= 500 }

// ErrorID names one failure, for the answer and the log line that tells
// what happened: a person reporting "error err_…" can be matched to it.
func ErrorID() string { return NewID("err_") }
