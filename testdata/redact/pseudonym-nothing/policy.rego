package veil.destinations.golden

# null and "" are never pseudonymised: a pseudonym of "nothing" would make
# every missing value one ps_ and join unrelated records.
allow := true

keep := {"payload.application.id"}

pseudonymize := {"payload.application.candidate.id", "payload.application.candidate.email", "payload.application.candidate.ref", "payload.application.others.#.id"}
