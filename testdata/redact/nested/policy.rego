package veil.destinations.golden

allow := true

keep := {"action", "payload.application.id", "payload.application.current_stage.name", "payload.application.candidate.id"}
