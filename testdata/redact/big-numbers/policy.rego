package veil.destinations.golden

allow := true

keep := {"ids.application", "ids.candidate", "ids.score", "ids.ratio", "ids.neg"}
