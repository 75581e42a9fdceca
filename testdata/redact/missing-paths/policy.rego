package veil.destinations.golden

allow := true

keep := {"data.application.id", "data.application.job.title", "data.offer.id", "nope", "data.application.id.deeper"}
