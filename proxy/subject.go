package proxy

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

// handleSubjectReport answers GET /v1/subjects/{ref}/report[?format=json|md|html]:
// the person's access report (Art. 15), JSON by default.
func (a *adminAPI) handleSubjectReport(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "md" && format != "html" {
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "format must be json, md or html."))
		return
	}
	rep, err := a.Subjects.View(r.Context(), r.PathValue("ref"), actor(r))
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	switch format {
	case "md":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		gateway.WriteReportMarkdown(w, rep)
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := gateway.WriteReportHTML(w, rep); err != nil {
			a.Logger.Error("subject report", "err", err)
		}
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// handleErase answers DELETE /v1/subjects/{ref}: the erasure and its
// signed receipt (the first one's, for a person erased before).
func (a *adminAPI) handleErase(w http.ResponseWriter, r *http.Request) {
	res, receipt, err := a.Subjects.Erase(r.Context(), r.PathValue("ref"), actor(r))
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	if !res.Already && a.Deliverer != nil {
		a.Deliverer.Notify()
	}
	writeJSON(w, http.StatusOK, struct {
		veil.Erasure
		Receipt veil.ErasureReceipt `json:"receipt"`
	}{res, receipt})
}

// handleRestore answers POST /v1/subjects/{ref}/restore {"reason": "…"}:
// the person's erasure is lifted.
func (a *adminAPI) handleRestore(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "The body must be JSON: {\"reason\": \"…\"}."))
		return
	}
	if err := a.Subjects.Restore(r.Context(), r.PathValue("ref"), actor(r), in.Reason); err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"restored": true})
}

// handleReceiptKey answers GET /v1/receipts/key: the public key erasure
// receipts are signed with, for anyone who checks one.
func (a *adminAPI) handleReceiptKey(w http.ResponseWriter, r *http.Request) {
	pub := a.Subjects.PublicKey()
	writeJSON(w, http.StatusOK, map[string]string{"algorithm": "Ed25519", "key_id": veil.KeyID(pub),
		"public_key": base64.StdEncoding.EncodeToString(pub)})
}
