package veil.destinations.golden

allow := true

keep := {"jobs.#.id", "jobs.#.name", "tags.#", "matrix.#.1", "emails.0.type"}
