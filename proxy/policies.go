package proxy

import (
	"net/http"

	"github.com/veilhq/veil"
)

// handleReload loads the policy folder again: POST /v1/policies/reload.
// The load is audited as the caller's (who changed which destination's
// policy is then known); a set that fails to load is 422 and the running
// set stays.
func (a *adminAPI) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := a.Reload(r.Context(), actor(r)); err != nil {
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "The policy folder was not loaded; the running set stays: %s", veil.ErrorMessage(err)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "loaded"})
}
