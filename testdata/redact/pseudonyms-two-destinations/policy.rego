package veil.destinations.golden

allow := true

keep := {"data.application_id"}

pseudonymize := {"data.candidate.id", "data.referrer.candidate_id"}
