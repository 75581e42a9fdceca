// Package veil holds Veil's domain types: the events it receives, the
// decisions policies make about them, the deliveries it owes and the audit
// entries it writes. The packages proxy, policy, redact and audit build on
// these; only cmd/veil wires them together.
package veil

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Vendor names a signature scheme and payload shape of an ATS.
const (
	VendorGreenhouse      = "greenhouse"
	VendorLever           = "lever"
	VendorAshby           = "ashby"
	VendorSmartRecruiters = "smartrecruiters"
	VendorStandard        = "standard"
	VendorHMAC            = "hmac"
)

// Vendors lists every vendor a source may name.
var Vendors = []string{VendorGreenhouse, VendorLever, VendorAshby, VendorSmartRecruiters, VendorStandard, VendorHMAC}

// Event is one verified webhook request as Veil committed it.
type Event struct {
	ID         string    // evt_…, assigned by Veil
	Source     string    // config name of the source
	Vendor     string    // vendor of the source
	EventType  string    // vendor's event name (Greenhouse action, Standard Webhooks type…)
	Subject    string    // vendor record reference, e.g. greenhouse:candidate:123; never stored in plain text
	DedupKey   string    // per-vendor idempotency key; stored only as a digest
	ReceivedAt time.Time // when Veil accepted it
	Payload    []byte    // the raw body exactly as the vendor sent it
}

// NewID returns a random identifier with the given prefix (evt_, dlv_…):
// 128 bits, lower-case base32, sortable only by chance.
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
