package veil.destinations.golden

allow := true

keep := {"payload.application.id", "payload.application.rejected_at", "payload.application.credited_to.name"}
