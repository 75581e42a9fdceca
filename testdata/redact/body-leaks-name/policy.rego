package veil.destinations.golden

allow := true

keep := {"payload.application.id"}

body := {"text": sprintf("%s joined", [input.payload.payload.application.candidate.first_name])}
