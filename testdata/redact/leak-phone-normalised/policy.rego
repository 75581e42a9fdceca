package veil.destinations.golden

allow := true

keep := {"note.text"}
