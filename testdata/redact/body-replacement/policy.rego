package veil.destinations.golden

allow := true

keep := {"payload.application.id", "payload.application.jobs.#.name"}

body := {"text": sprintf("Application %v for %s was hired.", [input.payload.payload.application.id, input.payload.payload.application.jobs[0].name])}
