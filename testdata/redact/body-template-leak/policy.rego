package veil.destinations.golden

allow := true

keep := {"payload.application.id"}

body := {"text": "{{payload.application.candidate.first_name}} joined"}
