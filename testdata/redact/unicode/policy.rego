package veil.destinations.golden

allow := true

keep := {"job.title", "job.emoji"}

pseudonymize := {"job.city"}
