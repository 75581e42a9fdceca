package veil.destinations.golden

allow if input.event_type == "hire_candidate"

keep := {"payload.id"}
