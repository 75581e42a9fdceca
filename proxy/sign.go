package proxy

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/sjson"

	"github.com/veilhq/veil"
)

// SignRequest returns the headers (and, for Lever, the body) with which the
// vendor of src would send body at time now: what `veil send` posts. Lever
// stamps triggeredAt into the body and signs it, so its body is rewritten
// there and only there (sjson keeps every other byte).
func SignRequest(src *veil.Source, body []byte, now time.Time) (http.Header, []byte, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "veil-send")
	secret := []byte(src.Secret)
	switch src.Vendor {
	case veil.VendorGreenhouse:
		h.Set("Greenhouse-Event-ID", veil.NewID(""))
		h.Set("Signature", "sha256 "+hex.EncodeToString(hmacSHA256(secret, body)))
	case veil.VendorAshby:
		h.Set("Ashby-Signature", "sha256="+hex.EncodeToString(hmacSHA256(secret, body)))
	case veil.VendorLever:
		token, _, _, err := parseLeverBody(body)
		if err != nil {
			return nil, nil, fmt.Errorf("sign lever body: %w", err)
		}
		ms := strconv.FormatInt(now.UnixMilli(), 10)
		sig := hex.EncodeToString(hmacSHA256(secret, []byte(token), []byte(ms)))
		if body, err = sjson.SetRawBytes(body, "triggeredAt", []byte(ms)); err != nil {
			return nil, nil, fmt.Errorf("sign lever body: %w", err)
		}
		if body, err = sjson.SetBytes(body, "signature", sig); err != nil {
			return nil, nil, fmt.Errorf("sign lever body: %w", err)
		}
	case veil.VendorStandard:
		key, err := veil.DecodeStandardSecret(src.Secret)
		if err != nil {
			return nil, nil, err
		}
		id, ts := veil.NewID("msg_"), strconv.FormatInt(now.Unix(), 10)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", StandardSignature(key, id, ts, body))
	case veil.VendorSmartRecruiters:
		h.Set("smartrecruiters-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("event-id", veil.NewID(""))
		h.Set("event-name", "application.status.updated")
		h.Set("event-version", "1")
		h.Set("smartrecruiters-signature", "v1="+hex.EncodeToString(hmacSHA256(secret, smartRecruitersMessage(h, body)...)))
	case veil.VendorHMAC:
		sig := hmacSHA256(secret, body)
		enc := hex.EncodeToString(sig)
		if src.HMAC.Encoding == "base64" {
			enc = base64.StdEncoding.EncodeToString(sig)
		}
		h.Set(src.HMAC.Header, src.HMAC.Prefix+enc)
	default:
		return nil, nil, fmt.Errorf("unknown vendor %q", src.Vendor)
	}
	return h, body, nil
}
